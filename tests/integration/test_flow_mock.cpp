// Flow control through the C ABI against the mock endpoint: request and
// token buckets, cooldown after 429, Retry-After forms, deadlines across
// retries, the circuit breaker, limit keys and groups. Both backends. The
// figures are those the flow-control issue asks for; tolerances leave room
// for a loaded CI machine.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <thread>

#include "capi_harness.hpp"

namespace barrage::testing {
namespace {

class FlowMock : public ::testing::TestWithParam<int> {
 protected:
  int backend() const { return GetParam(); }
};

int64_t steady_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Absolute send times (µs): sent_us counts from each request's own submit,
// and submitting a thousand takes milliseconds under a sanitizer.
std::vector<int64_t> sent_times(const std::map<uint64_t, ResultPtr>& results,
                                const std::map<uint64_t, int64_t>& submitted_at) {
  std::vector<int64_t> t;
  for (auto& [id, r] : results) t.push_back(submitted_at.at(id) + r->sent_us);
  std::sort(t.begin(), t.end());
  return t;
}

size_t max_in_window(const std::vector<int64_t>& sorted, int64_t window_us) {
  size_t best = 0, lo = 0;
  for (size_t hi = 0; hi < sorted.size(); ++hi) {
    while (sorted[hi] - sorted[lo] >= window_us) ++lo;
    best = std::max(best, hi - lo + 1);
  }
  return best;
}

TEST_P(FlowMock, RequestBucketSpreadsAThousandRequestsOverTenSeconds) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path(),
           {{BRG_OPT_MAX_INFLIGHT, 1000}, {BRG_OPT_RATE_LIMIT, 100}, {BRG_OPT_RATE_PERIOD_MS, 1000},
            {BRG_OPT_RATE_BURST, 10}});
  // Warm ten keep-alive connections and let the bucket refill, so the burst
  // below is not delayed by TLS handshakes: this measures the bucket.
  for (int i = 0; i < 10; ++i) e.submit(m.url());
  e.collect(10);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  std::map<uint64_t, int64_t> submitted_at;
  std::string url = m.url();
  for (int i = 0; i < 1000; ++i) {
    int64_t before = steady_us();
    submitted_at[e.submit(url)] = before;
  }
  brg_poll(e.get(), 0);
  EXPECT_GT(e.stats().waiting_rate, 900u) << "requests beyond the burst wait for the bucket";
  auto results = e.collect(1000, std::chrono::seconds(30));
  for (auto& [id, r] : results) ASSERT_EQ(r->status, BRG_OK) << r->error;
  std::vector<int64_t> t = sent_times(results, submitted_at);
  int64_t span = t.back() - t.front();
  size_t busiest = max_in_window(t, 1000000);
  std::printf("100/s burst 10: 1000 requests started over %.3f s, busiest 1 s window %zu\n", span / 1e6, busiest);
  EXPECT_GE(span, 9900000);
  EXPECT_LE(span, 10300000);  // never faster than the rate; slack for a loaded run
  EXPECT_LE(busiest, 110u);
  EXPECT_EQ(m.server->stats().requests, 1010u);
}

TEST_P(FlowMock, ClientAtTheServersLimitSeesNo429) {
  mock::MockOptions o;
  o.limit_rps = 50;
  MockEndpoint m = MockEndpoint::start(o);
  Engine e(backend(), m.ca->path(),
           {{BRG_OPT_MAX_INFLIGHT, 100}, {BRG_OPT_RATE_LIMIT, 50}, {BRG_OPT_RATE_PERIOD_MS, 1000},
            {BRG_OPT_RATE_BURST, 1}});
  for (int i = 0; i < 500; ++i) e.submit(m.url());
  auto results = e.collect(500, std::chrono::seconds(40));
  for (auto& [id, r] : results) EXPECT_EQ(r->status, BRG_OK) << r->error;
  std::printf("limit 50/s: server sent %llu 429s to barrage at 50/s\n",
              (unsigned long long)m.server->stats().status(429));
  EXPECT_EQ(m.server->stats().status(429), 0u);
  EXPECT_EQ(e.stats().throttled, 0u);
}

TEST_P(FlowMock, NaiveClientWithoutALimitIsThrottledByTheSameServer) {
  // The comparison for the closing note: the same 500 requests with no
  // client-side limit; the engine's cooldown still gets every one through.
  mock::MockOptions o;
  o.limit_rps = 50;
  MockEndpoint m = MockEndpoint::start(o);
  Engine e(backend(), m.ca->path(), {{BRG_OPT_MAX_INFLIGHT, 100}, {BRG_OPT_MAX_RETRIES, 50}});
  for (int i = 0; i < 500; ++i) e.submit(m.url());
  auto results = e.collect(500, std::chrono::seconds(60));
  for (auto& [id, r] : results) EXPECT_EQ(r->status, BRG_OK) << r->error;
  uint64_t throttled = m.server->stats().status(429);
  std::printf("limit 50/s: server sent %llu 429s to a client without a limit\n", (unsigned long long)throttled);
  EXPECT_GT(throttled, 100u);
  EXPECT_EQ(e.stats().throttled, throttled);
}

TEST_P(FlowMock, RetryAfterOneSecondIsNeverCutShort) {
  mock::MockOptions o;
  o.rate_429 = 0.3;
  o.retry_after_s = 1;
  MockEndpoint m = MockEndpoint::start(o);
  Engine e(backend(), m.ca->path(), {{BRG_OPT_MAX_INFLIGHT, 20}, {BRG_OPT_MAX_RETRIES, 20}});
  for (int i = 0; i < 60; ++i) e.submit(m.url());
  brg_poll(e.get(), 100);
  auto results = e.collect(60, std::chrono::seconds(60));
  int retried = 0;
  for (auto& [id, r] : results) {
    EXPECT_EQ(r->status, BRG_OK) << r->error;
    // Each retry waited at least the server's second after its 429.
    EXPECT_GE(r->sent_us, int64_t(r->attempts - 1) * 1000000) << "attempts " << r->attempts;
    if (r->attempts > 1) ++retried;
  }
  EXPECT_GT(retried, 5);
  EXPECT_GT(e.stats().throttled, 5u);
}

TEST_P(FlowMock, RetryAfterMillisecondsAndHttpDateAreHonoured) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path(), {{BRG_OPT_BACKOFF_BASE_MS, 1}, {BRG_OPT_BACKOFF_MAX_MS, 1}, {BRG_OPT_MAX_RETRIES, 1}});
  uint64_t ms = e.submit(m.url(), chat_body("x"), {{"x-mock-status", "503"}, {"x-mock-retry-after-ms", "250"}});
  auto r1 = e.collect(1);
  EXPECT_EQ(r1[ms]->attempts, 2u);
  EXPECT_GE(r1[ms]->sent_us, 250000);
  EXPECT_LT(r1[ms]->sent_us, 900000);

  // An HTTP-date two seconds ahead: second precision, so the wait is 1-2 s.
  std::time_t at = std::time(nullptr) + 2;
  char date[64];
  std::tm tm{};
  gmtime_r(&at, &tm);
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  uint64_t dated = e.submit(m.url(), chat_body("x"), {{"x-mock-status", "429"}, {"x-mock-retry-after", date}});
  auto r2 = e.collect(1);
  EXPECT_EQ(r2[dated]->attempts, 2u);
  EXPECT_GE(r2[dated]->sent_us, 1000000) << date;
  EXPECT_LT(r2[dated]->sent_us, 2600000) << date;
}

TEST_P(FlowMock, TokensPerMinuteLimitsStartsAndUsageSettlementFreesThem) {
  // 120,000 TPM, 1,000 tokens per request, burst 10 requests' worth: over
  // 3 s at most 10 + 3 s x 2/s = 16 may start. /health answers carry no
  // usage, so nothing is credited back.
  MockEndpoint m = MockEndpoint::start();
  std::vector<std::pair<brg_option, int64_t>> opts = {
      {BRG_OPT_MAX_INFLIGHT, 500}, {BRG_OPT_TOKENS_PER_MINUTE, 120000}, {BRG_OPT_TOKENS_BURST, 10000}};
  auto run = [&](const std::string& path, const char* method) {
    Engine e(backend(), m.ca->path(), opts);
    std::string url = m.url(path);
    for (int i = 0; i < 200; ++i) {
      brg_request r{};
      r.size = sizeof r;
      r.url = url.c_str();
      r.method = method;
      std::string body = chat_body("x");
      if (std::string(method) == "POST") r.body = body.data(), r.body_len = body.size();
      r.token_estimate = 1000;
      r.group = 1;
      r.max_retries = -1;
      EXPECT_EQ(brg_submit(e.get(), &r, nullptr), 0) << brg_last_error();
    }
    EXPECT_EQ(brg_group_deadline(e.get(), 1, 3000), 0);
    auto results = e.collect(200, std::chrono::seconds(20));
    int ok = 0, timed_out = 0;
    for (auto& [id, r] : results) {
      if (r->status == BRG_OK) ++ok;
      if (r->status == BRG_E_TIMEOUT) {
        ++timed_out;
        EXPECT_NE(std::string(r->error).find("group deadline"), std::string::npos) << r->error;
      }
    }
    EXPECT_EQ(ok + timed_out, 200);
    return ok;
  };
  int without_usage = run("/health", "GET");
  int with_usage = run("/v1/chat/completions", "POST");
  std::printf("TPM 120k, 1k-token estimates, 3 s: %d started without usage, %d with settlement\n",
              without_usage, with_usage);
  EXPECT_GE(without_usage, 14);
  EXPECT_LE(without_usage, 17);
  EXPECT_GT(with_usage, 100) << "answers of ~30 tokens give back ~970 of each 1,000 estimated";
}

TEST_P(FlowMock, DeadlineCutsRetriesOfAServerThat503sForever) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path(),
           {{BRG_OPT_BACKOFF_BASE_MS, 5}, {BRG_OPT_BACKOFF_MAX_MS, 10}, {BRG_OPT_MAX_RETRIES, 1000},
            {BRG_OPT_BREAKER_THRESHOLD, 0}});
  uint64_t id = e.submit(m.url(), chat_body("x"), {{"x-mock-status", "503"}, {"x-mock-retry-after", "0"}}, 2000);
  auto r = e.collect(1, std::chrono::seconds(10));
  std::printf("503 forever, deadline 2 s: ended after %.1f ms, %u attempts, %s\n", r[id]->total_us / 1e3,
              r[id]->attempts, brg_status_name(r[id]->status));
  EXPECT_GE(r[id]->total_us, 1980000);
  EXPECT_LE(r[id]->total_us, 2100000);  // slack for a loaded, sanitized run
  EXPECT_GT(r[id]->attempts, 20u);
  EXPECT_TRUE(r[id]->status == BRG_E_HTTP || r[id]->status == BRG_E_TIMEOUT) << r[id]->error;
}

TEST_P(FlowMock, CircuitBreakerFailsFastThenProbes) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path(),
           {{BRG_OPT_BREAKER_THRESHOLD, 5}, {BRG_OPT_BREAKER_PAUSE_MS, 300}, {BRG_OPT_MAX_RETRIES, 0},
            {BRG_OPT_MAX_INFLIGHT, 1}});
  for (int i = 0; i < 20; ++i) e.submit(m.url(), chat_body("x"), {{"x-mock-status", "500"}});
  auto results = e.collect(20);
  int unavailable = 0;
  for (auto& [id, r] : results)
    if (r->status == BRG_E_UNAVAILABLE) {
      ++unavailable;
      EXPECT_NE(std::string(r->error).find("circuit breaker"), std::string::npos);
    }
  EXPECT_EQ(unavailable, 15) << "5 failures open the breaker; the rest fail fast";
  EXPECT_EQ(m.server->stats().requests, 5u);
  EXPECT_EQ(e.stats().breaker_open_keys, 1u);
  EXPECT_EQ(e.stats().rejected, 15u);
  // After the pause one probe goes through; its success closes the breaker.
  std::this_thread::sleep_for(std::chrono::milliseconds(350));
  uint64_t probe = e.submit(m.url());
  auto r = e.collect(1);
  EXPECT_EQ(r[probe]->status, BRG_OK) << r[probe]->error;
  EXPECT_EQ(e.stats().breaker_open_keys, 0u);
}

TEST_P(FlowMock, AbandonedProbeDoesNotHoldTheKeyShut) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path(),
           {{BRG_OPT_BREAKER_THRESHOLD, 2}, {BRG_OPT_BREAKER_PAUSE_MS, 100}, {BRG_OPT_MAX_RETRIES, 0}});
  for (int i = 0; i < 2; ++i) e.submit(m.url(), chat_body("x"), {{"x-mock-status", "500"}});
  e.collect(2);
  ASSERT_EQ(e.stats().breaker_open_keys, 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  // The half-open probe stalls and is cancelled: it reports nothing.
  uint64_t probe = e.submit(m.url(), chat_body("x"), {{"x-mock-fault", "stall"}});
  auto t0 = std::chrono::steady_clock::now();
  while (m.server->stats().requests < 3 && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3))
    brg_poll(e.get(), 10);
  ASSERT_EQ(brg_cancel(e.get(), probe), 0);
  e.collect(1);
  // The next request becomes the probe instead of waiting forever.
  uint64_t next = e.submit(m.url());
  auto r = e.collect(1, std::chrono::seconds(3));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[next]->status, BRG_OK) << r[next]->error;
  EXPECT_EQ(e.stats().breaker_open_keys, 0u);
}

TEST_P(FlowMock, ASuccessfulProbeWakesTheWaitingRequestsAtOnce) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path(),
           {{BRG_OPT_BREAKER_THRESHOLD, 2}, {BRG_OPT_BREAKER_PAUSE_MS, 1500}, {BRG_OPT_MAX_RETRIES, 0}});
  for (int i = 0; i < 2; ++i) e.submit(m.url(), chat_body("x"), {{"x-mock-status", "500"}});
  e.collect(2);
  ASSERT_EQ(e.stats().breaker_open_keys, 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(1550));
  // The probe takes 200 ms; five more wait for its verdict.
  auto t0 = std::chrono::steady_clock::now();
  e.submit(m.url(), chat_body("probe"), {{"x-mock-latency-ms", "200"}});
  for (int i = 0; i < 5; ++i) e.submit(m.url());
  auto results = e.collect(6, std::chrono::seconds(5));
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& [id, r] : results) EXPECT_EQ(r->status, BRG_OK) << r->error;
  // Not another 1.5 s pause after the probe came back.
  EXPECT_LT(took, 1.0);
  EXPECT_EQ(e.stats().breaker_open_keys, 0u);
}

TEST_P(FlowMock, RunningOutOfDescriptorsDoesNotOpenTheBreaker) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path(),
           {{BRG_OPT_BREAKER_THRESHOLD, 2}, {BRG_OPT_BREAKER_PAUSE_MS, 60000}, {BRG_OPT_MAX_RETRIES, 0}});
  // Warm up nothing: every descriptor this test needs exists now. Then cap
  // the soft limit at the next free descriptor, so the engine's socket() fails.
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  int probe_fd = dup(0);
  ASSERT_GE(probe_fd, 0);
  close(probe_fd);
  rlimit capped = saved;
  capped.rlim_cur = rlim_t(probe_fd);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &capped), 0);
  for (int i = 0; i < 4; ++i) e.submit(m.url());
  auto starved = e.collect(4, std::chrono::seconds(5));
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  for (auto& [id, r] : starved) {
    EXPECT_EQ(r->status, BRG_E_CONNECT);
    EXPECT_NE(std::string(r->error).find("out of file descriptors"), std::string::npos) << r->error;
  }
  EXPECT_EQ(e.stats().breaker_open_keys, 0u) << "our own EMFILE counted against the server";
  // With descriptors back, the same key works at once.
  uint64_t after = e.submit(m.url());
  auto r = e.collect(1, std::chrono::seconds(5));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[after]->status, BRG_OK) << r[after]->error;
}

TEST_P(FlowMock, LimitKeysHaveSeparateBuckets) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path(),
           {{BRG_OPT_RATE_LIMIT, 10}, {BRG_OPT_RATE_PERIOD_MS, 1000}, {BRG_OPT_RATE_BURST, 1}});
  auto submit_keyed = [&](const char* key) {
    std::string url = m.url(), body = chat_body("x");
    brg_request r{};
    r.size = sizeof r;
    r.url = url.c_str();
    r.body = body.data();
    r.body_len = body.size();
    r.limit_key = key;
    r.max_retries = -1;
    EXPECT_EQ(brg_submit(e.get(), &r, nullptr), 0);
  };
  for (int i = 0; i < 10; ++i) submit_keyed("model-a");
  for (int i = 0; i < 10; ++i) submit_keyed("model-b");
  auto results = e.collect(20);
  int64_t last = 0;
  for (auto& [id, r] : results) {
    EXPECT_EQ(r->status, BRG_OK);
    last = std::max(last, r->sent_us);
  }
  // Ten per key at 10/s: 0.9 s; one shared bucket would need 1.9 s.
  EXPECT_GE(last, 850000);
  EXPECT_LT(last, 1400000);
}

TEST_P(FlowMock, GroupCancelAndGroupDeadline) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path(), {{BRG_OPT_MAX_INFLIGHT, 50}});
  auto submit_in = [&](uint64_t group) {
    std::string url = m.url(), body = chat_body("x");
    std::string h1 = "x-mock-fault", v1 = "stall";
    brg_header h{h1.c_str(), v1.c_str()};
    brg_request r{};
    r.size = sizeof r;
    r.url = url.c_str();
    r.body = body.data();
    r.body_len = body.size();
    r.headers = &h;
    r.n_headers = 1;
    r.group = group;
    r.max_retries = -1;
    uint64_t id = 0;
    EXPECT_EQ(brg_submit(e.get(), &r, &id), 0);
    return id;
  };
  for (int i = 0; i < 10; ++i) submit_in(7);
  for (int i = 0; i < 5; ++i) submit_in(8);
  for (int i = 0; i < 5; ++i) brg_poll(e.get(), 10);
  EXPECT_EQ(brg_group_deadline(e.get(), 7, 200), 0);
  EXPECT_EQ(brg_group_deadline(e.get(), 0, 200), BRG_E_INVALID);
  auto seven = e.collect(10, std::chrono::seconds(5));
  for (auto& [id, r] : seven) {
    EXPECT_EQ(r->status, BRG_E_TIMEOUT);
    EXPECT_NE(std::string(r->error).find("group deadline"), std::string::npos) << r->error;
  }
  EXPECT_EQ(brg_cancel_group(e.get(), 8), 5);
  EXPECT_EQ(brg_cancel_group(e.get(), 8), 0);
  auto eight = e.collect(5, std::chrono::seconds(2));
  for (auto& [id, r] : eight) EXPECT_EQ(r->status, BRG_E_CANCELLED);
  EXPECT_EQ(e.stats().in_flight, 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, FlowMock, ::testing::Values(BRG_BACKEND_IO_URING, BRG_BACKEND_EPOLL),
                         backend_label);

}  // namespace
}  // namespace barrage::testing
