// One "process" of the shared-limits tests as a real process: its own engine
// (C API only, as an application would link it), limits shared through the
// Redis given on the command line. It warms its connections, sleeps until
// the common start instant (CLOCK_MONOTONIC, the same clock in every process
// and network namespace of the machine), submits n requests at once, polls
// until all are answered or the run ends, and writes what it saw to --out:
//   sent <µs>          one line per request answered 200 (its send instant)
//   failed <status>    one line per other answer
// --limit-key names the rate-limit key (default: the URL's origin), for
// workers that reach one provider through different addresses.
//   done <answered> <ok> <failed> <round trips after warm-up> <fallback keys> <late>
//        <connections opened after warm-up>
// (late = 1 when the warm-up was not done by the start instant). Exit 0 once
// the file is written, 2 on bad arguments or a refused engine.
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "barrage.h"

namespace {

int64_t mono_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

void sleep_until_us(int64_t at) {
  timespec ts{time_t(at / 1000000), long(at % 1000000) * 1000};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) != 0) {
  }
}

struct Args {
  int backend = BRG_BACKEND_EPOLL;
  std::string url, redis, ns, out, limit_key;
  int64_t rate = 200, burst = 20, n = 100, start_us = 0, run_us = 5000000;
};

bool parse(int argc, char** argv, Args* a) {
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--backend") a->backend = v == "io_uring" ? BRG_BACKEND_IO_URING : BRG_BACKEND_EPOLL;
    else if (k == "--url") a->url = v;
    else if (k == "--redis") a->redis = v;
    else if (k == "--namespace") a->ns = v;
    else if (k == "--out") a->out = v;
    else if (k == "--limit-key") a->limit_key = v;
    else if (k == "--rate") a->rate = std::atoll(v.c_str());
    else if (k == "--burst") a->burst = std::atoll(v.c_str());
    else if (k == "--n") a->n = std::atoll(v.c_str());
    else if (k == "--start-us") a->start_us = std::atoll(v.c_str());
    else if (k == "--run-us") a->run_us = std::atoll(v.c_str());
    else return false;
  }
  return !a->url.empty() && !a->redis.empty() && !a->out.empty() && a->start_us > 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!parse(argc, argv, &a)) {
    std::fprintf(stderr, "usage: %s --url U --redis R --out FILE --start-us T [--backend io_uring|epoll] "
                 "[--namespace NS] [--limit-key K] [--rate N] [--burst N] [--n N] [--run-us US]\n", argv[0]);
    return 2;
  }
  brg_config* c = brg_config_new();
  brg_config_set_int(c, BRG_OPT_BACKEND, a.backend);
  brg_config_set_int(c, BRG_OPT_ALLOW_HTTP, 1);
  brg_config_set_int(c, BRG_OPT_MAX_INFLIGHT, 256);
  brg_config_set_int(c, BRG_OPT_RATE_LIMIT, a.rate);
  brg_config_set_int(c, BRG_OPT_RATE_PERIOD_MS, 1000);
  brg_config_set_int(c, BRG_OPT_RATE_BURST, a.burst);
  brg_config_set_int(c, BRG_OPT_TIMEOUT_MS, 60000);
  brg_config_set_str(c, BRG_OPT_SHARED_LIMITS, a.redis.c_str());
  if (!a.ns.empty()) brg_config_set_str(c, BRG_OPT_SHARED_NAMESPACE, a.ns.c_str());
  brg_engine* e = nullptr;
  int rc = brg_engine_new(c, &e);
  brg_config_free(c);
  if (rc != 0) {
    std::fprintf(stderr, "shared_limits_worker: engine: %s\n", brg_last_error());
    return 2;
  }
  const std::string body = R"({"model":"mock-1","messages":[{"role":"user","content":"hello"}]})";
  auto submit = [&](uint64_t* id, const char* key) {
    brg_request r{};
    r.size = sizeof r;
    r.url = a.url.c_str();
    r.body = body.data();
    r.body_len = body.size();
    r.max_retries = 0;
    r.limit_key = key;
    return brg_submit(e, &r, id);
  };
  const char* run_key = a.limit_key.empty() ? nullptr : a.limit_key.c_str();
  // Warm as many keep-alive connections as the run's start can use at once
  // (the burst, and a round trip's worth of the rate beyond it, all in one
  // process when its lease takes them): a unit taken on time but sent only
  // once a new connection is up moves into the next second and can push a
  // window past burst + rate, so the run would measure connection set-up,
  // not the limiter. The warm-up has a key of its own (a bucket per worker),
  // so it opens them in parallel and leaves the measured bucket full.
  const std::string warm_key = "warm-" + std::to_string(getpid());
  const int warm = int(a.burst + a.burst / 4 + 1);
  for (int i = 0; i < warm; ++i) submit(nullptr, warm_key.c_str());
  for (int got = 0; got < warm && mono_us() < a.start_us;) {
    brg_poll(e, 5);
    brg_result* w[8];
    size_t k = brg_results(e, w, 8);
    for (size_t i = 0; i < k; ++i) brg_result_free(w[i]);
    got += int(k);
  }
  const bool late = mono_us() >= a.start_us;
  // The warm key gives back what it holds once idle (SharedTuning's
  // idle_return, 250 ms): let that round trip happen before counting.
  for (const int64_t until = std::min(mono_us() + 400000, a.start_us); mono_us() < until;) brg_poll(e, 20);
  struct brg_stats s {};
  s.size = sizeof s;
  brg_stats(e, &s);
  const uint64_t trips_warm = s.shared_round_trips, opened_warm = s.connections_opened;
  sleep_until_us(a.start_us);

  std::map<uint64_t, int64_t> submitted_at;
  for (int64_t i = 0; i < a.n; ++i) {
    uint64_t id = 0;
    int64_t before = mono_us();
    if (submit(&id, run_key) == 0) submitted_at[id] = before;
  }
  std::vector<std::string> lines;
  size_t answered = 0, ok = 0, failed = 0;
  const int64_t stop_at = a.start_us + a.run_us;
  while (answered < submitted_at.size() && mono_us() < stop_at) {
    brg_poll(e, 5);
    brg_result* buf[64];
    size_t k;
    while ((k = brg_results(e, buf, 64)) > 0) {
      for (size_t i = 0; i < k; ++i) {
        const brg_result* r = buf[i];
        ++answered;
        if (r->status == BRG_OK && r->http_status == 200) {
          ++ok;
          lines.push_back("sent " + std::to_string(submitted_at[r->id] + r->sent_us));
        } else {
          ++failed;
          lines.push_back("failed " + std::to_string(r->http_status) + " " + brg_status_name(r->status));
        }
        brg_result_free(buf[i]);
      }
    }
  }
  brg_stats(e, &s);
  brg_engine_free(e);
  FILE* f = std::fopen(a.out.c_str(), "w");
  if (!f) return 2;
  for (const std::string& l : lines) std::fprintf(f, "%s\n", l.c_str());
  std::fprintf(f, "done %zu %zu %zu %llu %llu %d %llu\n", answered, ok, failed,
               (unsigned long long)(s.shared_round_trips - trips_warm), (unsigned long long)s.shared_fallback_keys,
               late ? 1 : 0, (unsigned long long)(s.connections_opened - opened_warm));
  std::fclose(f);
  return 0;
}
