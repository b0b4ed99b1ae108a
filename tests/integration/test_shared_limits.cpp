// Shared limits (BRG_OPT_SHARED_LIMITS) through the C ABI: four engines,
// each driven by its own thread as four processes would drive theirs, share
// one quota through a redis-server the test starts on loopback (own port,
// own directory), against the in-process mock endpoint. Send instants are
// the client's (submit time + sent_us); on loopback they are the arrival
// times within a fraction of a millisecond. Both backends.
//
// FourRealProcesses runs the same as four processes (shared_limits_worker,
// one engine each, C API only) started with posix_spawn.
//
// Run length: 5 s in CI; BARRAGE_SHARED_TEST_SECONDS=20 gives the issue's 20 s.
// BARRAGE_SHARED_TEST_LEASE_MS sets BRG_OPT_SHARED_LEASE_MS (default 2 s) in
// the 200/s and tokens runs, to compare lease horizons.
#include <poll.h>
#include <spawn.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <functional>
#include <cstdlib>
#include <set>
#include <thread>

#include "capi_harness.hpp"
#include "redis_server.hpp"
#include "shared_worker_runs.hpp"

namespace barrage::testing {
namespace {

int64_t steady_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int run_seconds() {
  const char* s = std::getenv("BARRAGE_SHARED_TEST_SECONDS");
  int v = s ? std::atoi(s) : 0;
  return v > 0 ? v : 5;
}

struct Limits {
  int64_t rate = 200, burst = 20, tpm = 0, tokens_burst = 0, lease_ms = 0;
};

// One "process": its own engine, submits n requests at once, polls until all
// are answered or stop_at_us passes (then the engine cancels the rest).
struct Proc {
  std::vector<int64_t> sent;  // absolute µs of each answered request
  std::vector<std::pair<int64_t, int64_t>> sent_tokens;  // (µs, prompt + completion tokens)
  size_t ok = 0, failed = 0, answered = 0;
  std::vector<std::pair<int64_t, uint64_t>> fallback_keys;  // (µs, brg_stats.shared_fallback_keys) changes
  uint64_t round_trips = 0;
  uint64_t round_trips_warm = 0;  // after the warm-up: the run's own are round_trips - this
  std::string first_error;
  std::vector<int64_t> failed_sent;
  int64_t t0 = 0;
};

// start(): waits for the other processes and returns the common start instant.
void run_proc(int backend, const std::string& url, const std::string& redis, const std::string& ns,
              const Limits& l, int n, int64_t run_us, const std::function<int64_t()>& start, Proc& out,
              std::vector<std::pair<std::string, std::string>> first_headers = {}) {
  EnginePtr e = make_engine(backend, [&](brg_config* c) {
    EXPECT_EQ(brg_config_set_int(c, BRG_OPT_ALLOW_HTTP, 1), 0);
    EXPECT_EQ(brg_config_set_int(c, BRG_OPT_MAX_INFLIGHT, 256), 0);
    EXPECT_EQ(brg_config_set_int(c, BRG_OPT_RATE_LIMIT, l.rate), 0);
    EXPECT_EQ(brg_config_set_int(c, BRG_OPT_RATE_PERIOD_MS, 1000), 0);
    EXPECT_EQ(brg_config_set_int(c, BRG_OPT_RATE_BURST, l.burst), 0);
    if (l.tpm) EXPECT_EQ(brg_config_set_int(c, BRG_OPT_TOKENS_PER_MINUTE, l.tpm), 0);
    if (l.tokens_burst) EXPECT_EQ(brg_config_set_int(c, BRG_OPT_TOKENS_BURST, l.tokens_burst), 0);
    if (l.lease_ms) EXPECT_EQ(brg_config_set_int(c, BRG_OPT_SHARED_LEASE_MS, l.lease_ms), 0);
    EXPECT_EQ(brg_config_set_int(c, BRG_OPT_TIMEOUT_MS, 60000), 0);
    EXPECT_EQ(brg_config_set_str(c, BRG_OPT_SHARED_LIMITS, redis.c_str()), 0);
    EXPECT_EQ(brg_config_set_str(c, BRG_OPT_SHARED_NAMESPACE, ns.c_str()), 0);
  });
  if (!e) return;
  std::string b = chat_body("hello");
  std::vector<brg_header> hs;
  for (auto& [k, v] : first_headers) hs.push_back({k.c_str(), v.c_str()});
  // Warm a few keep-alive connections first, so that the measured run is
  // the limiter's and not the time new connections take.
  for (int i = 0; i < 5; ++i) {
    brg_request r{};
    r.size = sizeof r;
    r.url = url.c_str();
    r.body = b.data();
    r.body_len = b.size();
    r.max_retries = 0;
    EXPECT_EQ(brg_submit(e.get(), &r, nullptr), 0) << brg_last_error();
  }
  for (int got = 0; got < 5;) {
    EXPECT_GE(brg_poll(e.get(), 5), 0);
    brg_result* w[8];
    size_t k = brg_results(e.get(), w, 8);
    for (size_t i = 0; i < k; ++i) brg_result_free(w[i]);
    got += int(k);
  }
  {
    struct brg_stats s {};
    s.size = sizeof s;
    brg_stats(e.get(), &s);
    out.round_trips_warm = s.shared_round_trips;
  }
  const int64_t t0 = start();
  std::this_thread::sleep_until(std::chrono::steady_clock::time_point(std::chrono::microseconds(t0)));
  const int64_t stop_at_us = t0 + run_us;
  out.t0 = t0;
  std::map<uint64_t, int64_t> submitted_at;
  for (int i = 0; i < n; ++i) {
    brg_request r{};
    r.size = sizeof r;
    r.url = url.c_str();
    r.body = b.data();
    r.body_len = b.size();
    r.headers = i == 0 ? hs.data() : nullptr;
    r.n_headers = i == 0 ? uint32_t(hs.size()) : 0;
    r.max_retries = 0;
    uint64_t id = 0;
    int64_t before = steady_us();
    EXPECT_EQ(brg_submit(e.get(), &r, &id), 0) << brg_last_error();
    submitted_at[id] = before;
  }
  std::set<uint64_t> seen;
  uint64_t last_fb = 0;
  while (out.answered < size_t(n) && steady_us() < stop_at_us) {
    EXPECT_GE(brg_poll(e.get(), 5), 0);
    brg_result* buf[64];
    size_t k;
    while ((k = brg_results(e.get(), buf, 64)) > 0) {
      for (size_t i = 0; i < k; ++i) {
        ResultPtr res(buf[i]);
        EXPECT_TRUE(seen.insert(res->id).second) << "a second result for one request";
        ++out.answered;
        if (res->status == BRG_OK && res->http_status == 200) {
          ++out.ok;
          out.sent.push_back(submitted_at[res->id] + res->sent_us);
          out.sent_tokens.emplace_back(out.sent.back(), res->prompt_tokens + res->completion_tokens);
        } else {
          ++out.failed;
          out.failed_sent.push_back(submitted_at[res->id] + res->sent_us);
          if (out.first_error.empty()) out.first_error = std::to_string(res->http_status) + " " + brg_strerror(res->status);
        }
      }
    }
    struct brg_stats s {};
    s.size = sizeof s;
    brg_stats(e.get(), &s);
    if (s.shared_fallback_keys != last_fb) {
      last_fb = s.shared_fallback_keys;
      out.fallback_keys.emplace_back(steady_us(), last_fb);
    }
    out.round_trips = s.shared_round_trips;
  }
}

class SharedLimits : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    if (redis_.missing()) GTEST_SKIP() << "redis-server is not installed";
    ASSERT_TRUE(redis_.running());
    mock::MockOptions o;
    o.tls = false;
    mock_ = MockEndpoint::start(o);
    ASSERT_TRUE(mock_.server);
  }
  // Four "processes" at once; returns every answered request's send instant, sorted.
  // The run starts 300 ms after all four warmed up (the shared bucket is full
  // again by then) and stops after run_us; returns its t0.
  std::vector<int64_t> run4(const Limits& l, int per_proc, int64_t run_us, std::vector<Proc>& procs,
                            const std::string& ns, int64_t* t0_out,
                            std::vector<std::pair<std::string, std::string>> first_headers_of_0 = {},
                            const std::function<void(int64_t t0)>& meanwhile = {}) {
    procs.assign(4, Proc{});
    std::atomic<int64_t> t0{0};
    std::barrier sync(4, [&]() noexcept { t0 = steady_us() + 300000; });
    auto start = [&] {
      sync.arrive_and_wait();
      return t0.load();
    };
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; ++i)
      ts.emplace_back([&, i] {
        run_proc(GetParam(), mock_.url(), redis_.url(), ns, l, per_proc, run_us, start, procs[i],
                 i == 0 ? first_headers_of_0 : std::vector<std::pair<std::string, std::string>>{});
      });
    if (meanwhile) {
      while (t0.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      meanwhile(t0.load());
    }
    for (auto& t : ts) t.join();
    std::vector<int64_t> all;
    for (auto& p : procs) all.insert(all.end(), p.sent.begin(), p.sent.end());
    std::sort(all.begin(), all.end());
    *t0_out = t0.load();
    return all;
  }

  RedisServer redis_;
  MockEndpoint mock_;
};

TEST_P(SharedLimits, FourProcessesShareTwoHundredPerSecond) {
  const int secs = run_seconds();
  int64_t t0 = 0;
  std::vector<Proc> procs;
  // Each process alone would take the whole limit: twice its share waits.
  Limits l;
  if (const char* v = std::getenv("BARRAGE_SHARED_TEST_LEASE_MS")) l.lease_ms = std::atoi(v);
  std::vector<int64_t> t = run4(l, 100 * secs, secs * 1000000 + 200000, procs, "share" + std::to_string(GetParam()), &t0);
  size_t in_run = 0;
  for (int64_t x : t) in_run += x < t0 + secs * 1000000;
  int64_t at = 0;
  size_t busiest = max_in_window(t, 1000000, &at);
  uint64_t trips = 0;
  for (auto& p : procs) trips += p.round_trips - p.round_trips_warm;
  std::printf("4 processes, 200/s burst 20, %d s: %zu started (%.1f%% of 200/s), busiest 1 s window %zu "
              "(from +%.3f s), %llu Redis round trips after the warm-up (%.1f per 1000 requests)\n",
              secs, in_run, 100.0 * double(in_run) / (200.0 * secs), busiest, (at - t0) / 1e6,
              (unsigned long long)trips,
              1000.0 * double(trips) / double(std::max<size_t>(t.size(), 1)));
  for (auto& p : procs) EXPECT_EQ(p.failed, 0u) << p.first_error;
  // The issue's bound: burst + one second. (The 1-4 units over it seen
  // before were warm-up units whose instant had passed, given back to
  // Redis at start-up and so granted twice, and units mapped from each
  // answer's arrival rather than from Redis's clock.)
  EXPECT_LE(busiest, 220u);
  EXPECT_GE(double(in_run), 0.98 * 200 * secs);
}

TEST_P(SharedLimits, FourRealProcessesShareTwoHundredPerSecond) {
  // The issue's set-up as it says it: four processes, each with its own
  // engine, 200/s burst 20 shared. They start together at an instant given
  // on their command line (CLOCK_MONOTONIC is one clock for all of them).
  const int secs = run_seconds();
  char dir[] = "/tmp/barrage-shared-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const int64_t start_us = mono_us() + 1500000, run_us = secs * 1000000 + 200000;
  std::vector<pid_t> pids;
  std::vector<std::string> outs;
  for (int i = 0; i < 4; ++i) {
    WorkerSpec w;
    w.worker = BARRAGE_SHARED_WORKER;
    w.backend = GetParam() == BRG_BACKEND_IO_URING ? "io_uring" : "epoll";
    w.url = mock_.url();
    w.redis = redis_.url();
    w.name_space = "procs" + std::to_string(GetParam());
    w.out = std::string(dir) + "/worker" + std::to_string(i);
    w.n = 100 * secs;
    w.start_us = start_us;
    w.run_us = run_us;
    outs.push_back(w.out);
    std::vector<std::string> args = worker_argv(w);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    ASSERT_EQ(posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ), 0) << argv[0];
    pids.push_back(pid);
  }
  EXPECT_EQ(wait_workers(pids, start_us + run_us + 15000000), 4);
  check_shared_200_per_s(outs, start_us, secs, "4 real processes");
  rmdir(dir);
}

TEST_P(SharedLimits, SharedTokensPerMinute) {
  // 60,000 tokens a minute (1,000 a second) and no request limit that binds:
  // each request is estimated at 15 tokens (the mock's body) and settles at
  // the mock's usage, so the token bucket alone paces the four.
  const int secs = run_seconds();
  Limits l;
  l.rate = 100000;
  l.burst = 100000;
  l.tpm = 60000;
  l.tokens_burst = 1000;
  if (const char* v = std::getenv("BARRAGE_SHARED_TEST_LEASE_MS")) l.lease_ms = std::atoi(v);
  int64_t t0 = 0;
  std::vector<Proc> procs;
  std::vector<int64_t> t = run4(l, 40 * secs, secs * 1000000 + 200000, procs, "tokens" + std::to_string(GetParam()), &t0);
  int64_t used = 0;
  size_t in_run = 0;
  for (auto& p : procs) {
    EXPECT_EQ(p.failed, 0u) << p.first_error;
    for (auto [at, tokens] : p.sent_tokens)
      if (at < t0 + secs * 1000000) used += tokens, ++in_run;
  }
  // What the answers' usage says was spent, against the limit over the run
  // plus the burst: estimates settle, so the real figure must fit.
  const double cap = secs * 1000.0 + 1000;
  std::printf("4 processes, 60,000 tokens/min burst 1000: %zu requests, %lld tokens in %d s (limit allows %.0f)\n",
              in_run, (long long)used, secs, cap);
  EXPECT_LE(double(used), cap * 1.05);
  EXPECT_GE(double(used), cap * 0.80);
}

TEST_P(SharedLimits, A429InOneProcessHoldsAllFour) {
  // Process 0's first request is answered 429 with Retry-After: 2; the
  // others hold leases, so only the shared cooldown can stop them. Leases of
  // a 200 ms horizon: with the default 2 s, each process's first lease is a
  // block of the schedule after the others' (the last to ask starts up to
  // 1.5 s in), and the 429 came after most requests had gone.
  int64_t t0 = 0;
  std::vector<Proc> procs;
  Limits l;
  l.lease_ms = 200;
  std::vector<int64_t> t = run4(l, 300, 3500000, procs, "cool" + std::to_string(GetParam()), &t0,
                                {{"x-mock-status", "429"}, {"x-mock-retry-after", "2"}});
  ASSERT_EQ(procs[0].failed_sent.size(), 1u) << "the 429";
  const int64_t at = procs[0].failed_sent[0];
  size_t during = 0, after = 0, before = 0;
  for (int64_t x : t) {
    if (x < at + 50000) ++before;  // sent before the news could arrive (50 ms)
    else if (x < at + 2000000) ++during;
    else ++after;
  }
  std::printf("429 + Retry-After 2 at +%.3f s: %zu sent within 50 ms of it, %zu in the next 1.95 s, %zu after\n",
              (at - t0) / 1e6, before, during, after);
  EXPECT_EQ(during, 0u) << "a process sent while the key cooled down";
  EXPECT_GT(after, 100u) << "the key came back after the cooldown";
  for (int i = 1; i < 4; ++i) EXPECT_EQ(procs[i].failed, 0u) << procs[i].first_error;
}

TEST_P(SharedLimits, RedisKilledForFiveSecondsMidRun) {
  // 4 x 500 requests at 200/s shared: about 10 s. Redis dies 2 s in and
  // comes back 5 s later; every request must complete exactly once, the
  // four together stay within the limit meanwhile, and rejoin quickly.
  int64_t t0 = 0, killed = 0, restarted = 0;
  std::vector<Proc> procs;
  const uint64_t before = mock_.server->stats().requests;
  std::vector<int64_t> t = run4(Limits{}, 500, 30000000, procs, "outage" + std::to_string(GetParam()), &t0, {},
                                [&](int64_t start) {
                                  std::this_thread::sleep_until(std::chrono::steady_clock::time_point(
                                      std::chrono::microseconds(start + 2000000)));
                                  killed = steady_us();
                                  redis_.kill();
                                  std::this_thread::sleep_for(std::chrono::seconds(5));
                                  restarted = steady_us();
                                  ASSERT_TRUE(redis_.start());
                                });
  for (auto& p : procs) {
    EXPECT_EQ(p.answered, 500u);
    EXPECT_EQ(p.failed, 0u) << p.first_error;
  }
  // Exactly once: the server saw the 2000 requests and 20 warm-ups, no more.
  EXPECT_EQ(mock_.server->stats().requests - before, 2000u + 20u);
  // The outage: from the detection timeout (250 ms) to the restart.
  std::vector<int64_t> in_outage;
  for (int64_t x : t)
    if (x >= killed + 250000 && x < restarted) in_outage.push_back(x);
  const double secs = (restarted - killed - 250000) / 1e6;
  size_t busiest = max_in_window(in_outage, 1000000);
  // Rejoin: the last process back on Redis after the restart.
  int64_t rejoined = 0;
  for (auto& p : procs) {
    int64_t back = 0;
    for (auto [at, keys] : p.fallback_keys)
      if (at >= restarted && keys == 0) back = back ? back : at;
    EXPECT_GT(back, 0) << "a process never rejoined";
    rejoined = std::max(rejoined, back);
  }
  std::printf("Redis down %.1f s: %zu started in %.2f s of fallback (%.1f/s), busiest 1 s window %zu; "
              "all rejoined %.3f s after the restart\n",
              (restarted - killed) / 1e6, in_outage.size(), secs, in_outage.size() / secs, busiest,
              (rejoined - restarted) / 1e6);
  EXPECT_LE(double(in_outage.size()), 200 * secs * 1.02 + 20);
  EXPECT_LE(busiest, 220u);
  EXPECT_LE(rejoined - restarted, 2000000);
}

TEST_P(SharedLimits, ThreadedEnginesShareTheLimit) {
  // Two engines in threaded mode (brg_start: their own reactor threads), 100
  // requests each at 100/s burst 10 shared: 200 take about 1.9 s together,
  // where alone each would be done in 0.9 s. brg_stats is read from this
  // thread while the reactors run.
  std::vector<EnginePtr> engines;
  for (int i = 0; i < 2; ++i) {
    engines.push_back(make_engine(GetParam(), [&](brg_config* c) {
      brg_config_set_int(c, BRG_OPT_ALLOW_HTTP, 1);
      brg_config_set_int(c, BRG_OPT_RATE_LIMIT, 100);
      brg_config_set_int(c, BRG_OPT_RATE_PERIOD_MS, 1000);
      brg_config_set_int(c, BRG_OPT_RATE_BURST, 10);
      brg_config_set_str(c, BRG_OPT_SHARED_LIMITS, redis_.url().c_str());
      brg_config_set_str(c, BRG_OPT_SHARED_NAMESPACE, ("threaded" + std::to_string(GetParam())).c_str());
    }));
    ASSERT_TRUE(engines.back());
    ASSERT_EQ(brg_start(engines.back().get()), 0);
  }
  const std::string url = mock_.url(), body = chat_body("hi");
  auto t0 = std::chrono::steady_clock::now();
  for (auto& e : engines)
    for (int i = 0; i < 100; ++i) {
      brg_request r{};
      r.size = sizeof r;
      r.url = url.c_str();
      r.body = body.data();
      r.body_len = body.size();
      ASSERT_EQ(brg_submit(e.get(), &r, nullptr), 0) << brg_last_error();
    }
  size_t ok = 0, done = 0;
  uint64_t trips = 0;
  auto until = t0 + std::chrono::seconds(20);
  while (done < 200 && std::chrono::steady_clock::now() < until) {
    for (auto& e : engines) {
      pollfd p{brg_results_fd(e.get()), POLLIN, 0};
      ::poll(&p, 1, 10);
      brg_result* buf[64];
      size_t n = brg_results(e.get(), buf, 64);
      for (size_t i = 0; i < n; ++i) {
        ok += buf[i]->status == BRG_OK;
        brg_result_free(buf[i]);
      }
      done += n;
    }
  }
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& e : engines) {
    struct brg_stats s {};
    s.size = sizeof s;
    brg_stats(e.get(), &s);
    trips += s.shared_round_trips;
    EXPECT_EQ(s.shared_fallback_keys, 0u);
  }
  std::printf("2 threaded engines, 200 requests at 100/s burst 10 shared: %.2f s, %llu round trips\n", took,
              (unsigned long long)trips);
  EXPECT_EQ(ok, 200u);
  EXPECT_GE(took, 1.8);
  EXPECT_GT(trips, 0u);
}

// Bad settings through the C ABI: a clear error from brg_engine_new, or,
// for a Redis that is only away, an engine that works on its local share.
std::string engine_error(const std::string& url, EnginePtr* keep = nullptr) {
  brg_config* c = brg_config_new();
  brg_config_set_int(c, BRG_OPT_ALLOW_HTTP, 1);
  brg_config_set_int(c, BRG_OPT_RATE_LIMIT, 100);
  brg_config_set_int(c, BRG_OPT_RATE_PERIOD_MS, 1000);
  brg_config_set_int(c, BRG_OPT_RATE_BURST, 5);
  EXPECT_EQ(brg_config_set_str(c, BRG_OPT_SHARED_LIMITS, url.c_str()), 0);
  brg_engine* e = nullptr;
  int rc = brg_engine_new(c, &e);
  brg_config_free(c);
  std::string err = rc == 0 ? "" : std::string(brg_status_name(rc)) + ": " + brg_last_error();
  if (keep && e) *keep = EnginePtr(e, brg_engine_free);
  else if (e) brg_engine_free(e);
  return err;
}

TEST(SharedLimitsSettings, MalformedUrlAndTlsAreClearErrors) {
  std::string err = engine_error("redis//127.0.0.1:6379");
  EXPECT_NE(err.find("BRG_E_INVALID"), std::string::npos) << err;
  EXPECT_NE(err.find("SHARED_LIMITS"), std::string::npos) << err;
  err = engine_error("rediss://127.0.0.1:6379");
  EXPECT_NE(err.find("TLS"), std::string::npos) << err;
  err = engine_error("redis://127.0.0.1:99999");
  EXPECT_NE(err.find("port"), std::string::npos) << err;
}

TEST(SharedLimitsSettings, WrongPasswordIsAClearError) {
  RedisServer redis("--requirepass sesame");
  if (redis.missing()) GTEST_SKIP() << "redis-server is not installed";
  std::string err = engine_error("redis://:open@127.0.0.1:" + std::to_string(redis.port()));
  EXPECT_NE(err.find("BRG_E_INVALID"), std::string::npos) << err;
  EXPECT_NE(err.find("credentials"), std::string::npos) << err;
  EXPECT_EQ(err.find("open@"), std::string::npos) << "the password must not be echoed";
  EXPECT_EQ(engine_error("redis://:sesame@127.0.0.1:" + std::to_string(redis.port())), "");
}

TEST(SharedLimitsSettings, AServerThatIsNotRedisIsAClearError) {
  NotRedis http(true);  // answers with an HTTP error
  auto t0 = std::chrono::steady_clock::now();
  std::string err = engine_error("redis://127.0.0.1:" + std::to_string(http.port()));
  EXPECT_NE(err.find("not Redis"), std::string::npos) << err;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  // One that never answers is only away: the engine starts on its local share.
  NotRedis silent(false);
  t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(engine_error("redis://127.0.0.1:" + std::to_string(silent.port())), "");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
}

TEST(SharedLimitsSettings, UnreachableRedisRunsOnTheLocalShare) {
  mock::MockOptions o;
  o.tls = false;
  MockEndpoint m = MockEndpoint::start(o);
  ASSERT_TRUE(m.server);
  EnginePtr e(nullptr, brg_engine_free);
  ASSERT_EQ(engine_error("redis://127.0.0.1:" + std::to_string(free_loopback_port()), &e), "");
  ASSERT_TRUE(e);
  std::vector<ResultPtr> r = run_requests(e.get(), m.url(), 20, chat_body("hi"));
  for (auto& x : r) EXPECT_EQ(x->status, BRG_OK) << x->error;
  struct brg_stats s {};
  s.size = sizeof s;
  brg_stats(e.get(), &s);
  EXPECT_EQ(s.shared_fallback_keys, 1u);
}

INSTANTIATE_TEST_SUITE_P(Backends, SharedLimits, ::testing::Values(BRG_BACKEND_IO_URING, BRG_BACKEND_EPOLL),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return std::string(i.param == BRG_BACKEND_IO_URING ? "io_uring" : "epoll");
                         });

}  // namespace
}  // namespace barrage::testing
