// Running shared_limits_worker processes from a test: their command lines,
// a bounded wait for them, and what their --out files say. Used by the
// loopback variant (test_shared_limits) and the network-namespace variant
// (test_shared_limits_netlab), which start the same worker differently.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace barrage::testing {

inline int64_t mono_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

struct WorkerSpec {
  std::string worker, backend, url, redis, name_space, out, limit_key;
  int64_t rate = 200, burst = 20, n = 100, start_us = 0, run_us = 0;
};

inline std::vector<std::string> worker_argv(const WorkerSpec& w) {
  std::vector<std::string> v = {w.worker, "--backend", w.backend, "--url", w.url, "--redis", w.redis,
                                "--namespace", w.name_space, "--out", w.out, "--rate", std::to_string(w.rate),
                                "--burst", std::to_string(w.burst), "--n", std::to_string(w.n),
                                "--start-us", std::to_string(w.start_us), "--run-us", std::to_string(w.run_us)};
  if (!w.limit_key.empty()) v.insert(v.end(), {"--limit-key", w.limit_key});
  return v;
}

// What one worker reported; done = its file ended with the summary line.
struct WorkerRun {
  std::vector<int64_t> sent;
  size_t answered = 0, ok = 0, failed = 0;
  uint64_t round_trips = 0, fallback_keys = 0, opened = 0;
  bool late = false, done = false;
  std::string first_error;
};

inline WorkerRun read_worker_out(const std::string& path) {
  WorkerRun r;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::string what;
    s >> what;
    if (what == "sent") {
      int64_t us = 0;
      s >> us;
      r.sent.push_back(us);
    } else if (what == "failed") {
      if (r.first_error.empty()) r.first_error = line;
    } else if (what == "done") {
      int late = 0;
      s >> r.answered >> r.ok >> r.failed >> r.round_trips >> r.fallback_keys >> late >> r.opened;
      r.late = late != 0;
      r.done = bool(s);
    }
  }
  return r;
}

// Waits for every pid until deadline_us (CLOCK_MONOTONIC), then kills what
// is left. Returns how many exited with status 0 in time.
inline int wait_workers(const std::vector<pid_t>& pids, int64_t deadline_us) {
  int good = 0;
  std::vector<bool> reaped(pids.size(), false);
  for (size_t left = pids.size(); left > 0;) {
    for (size_t i = 0; i < pids.size(); ++i) {
      if (reaped[i]) continue;
      int st = 0;
      pid_t p = waitpid(pids[i], &st, WNOHANG);
      if (p == pids[i] || p < 0) {
        reaped[i] = true;
        --left;
        good += p == pids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0;
      }
    }
    if (left == 0) break;
    if (mono_us() > deadline_us) {
      for (size_t i = 0; i < pids.size(); ++i)
        if (!reaped[i]) {
          kill(pids[i], SIGKILL);
          waitpid(pids[i], nullptr, 0);
        }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return good;
}

// The most instants in any window_us; *start (if given) = where that window begins.
inline size_t max_in_window(const std::vector<int64_t>& sorted, int64_t window_us, int64_t* start = nullptr) {
  size_t best = 0, lo = 0;
  for (size_t hi = 0; hi < sorted.size(); ++hi) {
    while (sorted[hi] - sorted[lo] >= window_us) ++lo;
    if (hi - lo + 1 > best) {
      best = hi - lo + 1;
      if (start) *start = sorted[lo];
    }
  }
  return best;
}

// Reads (and removes) the four workers' --out files and checks what the
// issue asks of 200/s burst 20 shared for `secs`: every worker warmed up in
// time and nothing failed or fell back; the busiest 1 s window holds at most
// 220 sends and the run at least 98 % of 200/s. `what` heads the printed line.
inline void check_shared_200_per_s(const std::vector<std::string>& outs, int64_t start_us, int secs,
                                   const std::string& what) {
  std::vector<int64_t> t;
  uint64_t trips = 0, opened = 0;
  for (const std::string& o : outs) {
    WorkerRun r = read_worker_out(o);
    EXPECT_TRUE(r.done) << o;
    EXPECT_FALSE(r.late) << "a worker was not warmed up by the start instant";
    EXPECT_EQ(r.failed, 0u) << r.first_error;
    EXPECT_EQ(r.fallback_keys, 0u);
    trips += r.round_trips;
    opened += r.opened;
    t.insert(t.end(), r.sent.begin(), r.sent.end());
    unlink(o.c_str());
  }
  std::sort(t.begin(), t.end());
  size_t in_run = 0;
  for (int64_t x : t) in_run += x < start_us + secs * 1000000;
  int64_t at = 0;
  size_t busiest = max_in_window(t, 1000000, &at);
  std::printf("%s, 200/s burst 20, %d s: %zu started (%.1f%% of 200/s), busiest 1 s window %zu (from +%.3f s), "
              "%llu Redis round trips after the warm-up (%.1f per 1000 requests), %llu connections opened "
              "after it\n",
              what.c_str(), secs, in_run, 100.0 * double(in_run) / (200.0 * secs), busiest, (at - start_us) / 1e6,
              (unsigned long long)trips, 1000.0 * double(trips) / double(std::max<size_t>(t.size(), 1)),
              (unsigned long long)opened);
  EXPECT_LE(busiest, 220u);
  EXPECT_GE(double(in_run), 0.98 * 200 * secs);
}

}  // namespace barrage::testing
