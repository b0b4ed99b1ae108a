// bench_e2e's main: pins this process to one CPU and nginx to another, starts
// nginx once for every benchmark, runs them, stops nginx, and exits 1 when any
// benchmark reported a wrong result (77 when nginx is not installed).
#include "peer.hpp"
#include "suite.hpp"

#include <sched.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

namespace {

// The first two CPUs this process may use: one for us, one for nginx, so
// that neither's CPU figures include the other's work. (-1, -1) on a single
// CPU, where nothing is pinned.
std::pair<int, int> pick_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return {-1, -1};
  std::vector<int> cpus;
  for (int i = 0; i < CPU_SETSIZE && cpus.size() < 2; ++i)
    if (CPU_ISSET(i, &set)) cpus.push_back(i);
  if (cpus.size() < 2) return {-1, -1};
  return {cpus[0], cpus[1]};
}

// Listing the benchmarks needs no nginx.
bool wants_peer(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--benchmark_list_tests", 22) == 0 &&
        std::strcmp(argv[i], "--benchmark_list_tests=false") != 0)
      return false;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace barrage::e2e;
  const bool need_peer = wants_peer(argc, argv);  // before Initialize consumes the flags
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (need_peer) {
    const auto [self_cpu, nginx_cpu] = pick_cpus();
    if (self_cpu >= 0) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(self_cpu, &one);
      if (sched_setaffinity(0, sizeof one, &one) != 0) std::perror("bench_e2e: sched_setaffinity");
    }
    if (const int rc = peer_up(nginx_cpu); rc != 0) return rc;
    // exit() from anywhere (a benchmark library error) still stops nginx.
    std::atexit(peer_down);
    std::fprintf(stderr, "bench_e2e: nginx on 127.0.0.1:%d, CPU %d; this process on CPU %d%s\n", peer().port,
                 nginx_cpu, self_cpu, quick() ? "; quick mode (BARRAGE_E2E_QUICK): figures mean nothing" : "");
  }
  const size_t ran = benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  peer_down();
  if (ran == 0) {
    std::fprintf(stderr, "no benchmark matched --benchmark_filter\n");
    return 1;
  }
  return g_failed ? 1 : 0;
}
