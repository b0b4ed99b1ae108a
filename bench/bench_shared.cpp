// Google Benchmark suite for shared limits (BRG_OPT_SHARED_LIMITS): one
// engine, driven inline by the benchmark thread, sends batches of 1,000
// requests through a binding rate limit to the in-process mock endpoint
// (plain HTTP on loopback), once with per-process limits and once with the
// limit kept in a redis-server this benchmark starts (own port and
// directory). Counters: the engine thread's CPU per request (the mock runs
// on its own threads, Redis in its own process), and Redis round trips per
// 1,000 granted requests, and reactor turns per request (a limiter that
// lets requests go in smaller groups costs more turns). The extra CPU of
// shared limiting is the difference of the two cpu_us_per_request figures. Exits 0 with a message
// when redis-server is missing.
#include <benchmark/benchmark.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "barrage.h"
#include "bench_check.hpp"
#include "mock_server.hpp"
#include "redis_server.hpp"

namespace barrage {
namespace {

using bench::fail;

double thread_cpu_us() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

struct Fixture {
  std::unique_ptr<testing::RedisServer> redis;
  std::unique_ptr<mock::MockServer> mock;
  std::string url;
};

Fixture& fixture() {
  static Fixture f = [] {
    Fixture x;
    x.redis = std::make_unique<testing::RedisServer>();
    mock::MockOptions o;
    o.tls = false;
    std::string err;
    x.mock = mock::MockServer::start(o, &err);
    if (x.mock) x.url = "http://127.0.0.1:" + std::to_string(x.mock->port()) + "/v1/chat/completions";
    return x;
  }();
  return f;
}

// Arg 0: per-process limit; 1: shared through Redis. 5,000 requests/s,
// burst 100: each batch of 1,000 waits for the bucket most of its time, so
// the limiter is busy, not idle.
void BM_LimitedBatch(benchmark::State& state) {
  Fixture& f = fixture();
  const bool shared = state.range(0) == 1;
  if (f.redis->missing()) return state.SkipWithError("redis-server is not installed");
  if (!f.mock) return fail(state, "mock server did not start");
  brg_config* c = brg_config_new();
  brg_config_set_int(c, BRG_OPT_ALLOW_HTTP, 1);
  brg_config_set_int(c, BRG_OPT_MAX_INFLIGHT, 256);
  brg_config_set_int(c, BRG_OPT_RATE_LIMIT, 5000);
  brg_config_set_int(c, BRG_OPT_RATE_PERIOD_MS, 1000);
  brg_config_set_int(c, BRG_OPT_RATE_BURST, 100);
  brg_config_set_int(c, BRG_OPT_MAX_RETRIES, 0);
  if (shared) {
    brg_config_set_str(c, BRG_OPT_SHARED_LIMITS, f.redis->url().c_str());
    brg_config_set_str(c, BRG_OPT_SHARED_NAMESPACE, "bench");
  }
  brg_engine* e = nullptr;
  int rc = brg_engine_new(c, &e);
  brg_config_free(c);
  if (rc != 0) return fail(state, std::string("engine: ") + brg_last_error());
  const std::string body = R"({"model":"mock-1","messages":[{"role":"user","content":"hi"}]})";
  int64_t polls = 0;  // reactor turns: brg_poll runs one per call
  auto batch = [&](int n) -> bool {
    for (int i = 0; i < n; ++i) {
      brg_request r{};
      r.size = sizeof r;
      r.url = f.url.c_str();
      r.body = body.data();
      r.body_len = body.size();
      if (brg_submit(e, &r, nullptr) != 0) return false;
    }
    int got = 0;
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (got < n && std::chrono::steady_clock::now() < until) {
      brg_poll(e, 5);
      ++polls;
      brg_result* buf[64];
      size_t k;
      while ((k = brg_results(e, buf, 64)) > 0) {
        for (size_t i = 0; i < k; ++i) {
          if (buf[i]->status != BRG_OK) return false;
          brg_result_free(buf[i]);
        }
        got += int(k);
      }
    }
    return got == n;
  };
  // One batch to reach steady state (connections open, lease sizes learnt).
  if (!batch(1000)) {
    brg_engine_free(e);
    return fail(state, "warm-up batch failed");
  }
  struct brg_stats s0 {};
  s0.size = sizeof s0;
  brg_stats(e, &s0);
  double cpu = 0;
  int64_t requests = 0;
  polls = 0;
  for (auto _ : state) {
    double t = thread_cpu_us();
    if (!batch(1000)) {
      brg_engine_free(e);
      return fail(state, "a batch failed");
    }
    cpu += thread_cpu_us() - t;
    requests += 1000;
  }
  struct brg_stats s1 {};
  s1.size = sizeof s1;
  brg_stats(e, &s1);
  brg_engine_free(e);
  state.SetItemsProcessed(requests);
  state.counters["cpu_us_per_request"] = cpu / double(requests);
  state.counters["turns_per_request"] = double(polls) / double(requests);
  state.counters["round_trips_per_1000"] =
      1000.0 * double(s1.shared_round_trips - s0.shared_round_trips) / double(requests);
  if (shared && s1.shared_fallback_keys != 0) return fail(state, "the key fell back from Redis during the run");
}
BENCHMARK(BM_LimitedBatch)->Arg(0)->Arg(1)->Iterations(5)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace barrage

BENCHMARK_MAIN();
