// Clocks and resource readings for the end-to-end suite (see measure.hpp).
#include "measure.hpp"

#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

namespace barrage::e2e {

int64_t now_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int64_t self_cpu_us() noexcept {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return (int64_t(ru.ru_utime.tv_sec) + ru.ru_stime.tv_sec) * 1'000'000 + ru.ru_utime.tv_usec +
         ru.ru_stime.tv_usec;
}

int64_t rss_bytes() noexcept {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return -1;
  long long size = 0, resident = 0;
  const int got = std::fscanf(f, "%lld %lld", &size, &resident);
  std::fclose(f);
  return got == 2 ? resident * sysconf(_SC_PAGESIZE) : -1;
}

int64_t proc_cpu_us(pid_t pid) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", int(pid));
  FILE* f = std::fopen(path, "r");
  if (!f) return -1;
  char buf[1024];
  const size_t len = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[len] = '\0';
  // "pid (comm) state ppid ...": comm may hold spaces, so count fields from
  // the last ')'. utime and stime are fields 14 and 15, i.e. the 12th and
  // 13th after it.
  const char* p = std::strrchr(buf, ')');
  if (!p) return -1;
  unsigned long long utime = 0, stime = 0;
  if (std::sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
    return -1;
  return int64_t((utime + stime) * 1'000'000 / sysconf(_SC_CLK_TCK));
}

int64_t quantile(std::vector<int64_t>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, size_t(q * double(v.size() - 1) + 0.5));
  return v[i];
}

}  // namespace barrage::e2e
