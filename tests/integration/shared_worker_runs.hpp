// Running shared_limits_worker processes from a test: their command lines,
// a bounded wait for them, and what their --out files say. Used by the
// loopback variant (test_shared_limits) and the network-namespace variant
// (test_shared_limits_netlab), which start the same worker differently.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
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
  uint64_t round_trips = 0, fallback_keys = 0;
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
      s >> r.answered >> r.ok >> r.failed >> r.round_trips >> r.fallback_keys >> late;
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

}  // namespace barrage::testing
