// Waits a server can impose, bounded: a huge Retry-After is obeyed only up
// to BRG_OPT_MAX_SERVER_WAIT_MS; a request waiting for its limit key ends
// with BRG_E_TIMEOUT after its attempt timeout, saying so; requests waiting
// for a cooling key hold no in-flight slot, so other keys go on at full
// speed; a server that never finishes the TLS handshake costs its requests
// one connect timeout together, not one after another. Both backends.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "capi_harness.hpp"

namespace barrage::testing {
namespace {

class ServerWaits : public ::testing::TestWithParam<int> {
 protected:
  int backend() const { return GetParam(); }
};

using Headers = std::vector<std::pair<std::string, std::string>>;

// One chat request on limit key `key` with the mock controls in `headers`.
uint64_t submit_keyed(Engine& e, const std::string& url, const char* key, const Headers& headers,
                      int64_t timeout_ms = 0, int32_t max_retries = -1) {
  return e.submit(url, R"({"model":"mock-1","messages":[{"role":"user","content":"hi"}]})", headers, 0, max_retries,
                  timeout_ms, nullptr, key);
}

// Polls until `want` is in (or `limit` passed); `out` keeps what arrived.
void await(Engine& e, std::map<uint64_t, ResultPtr>& out, uint64_t want, std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (out.find(want) == out.end() && std::chrono::steady_clock::now() < until) {
    brg_poll(e.get(), 20);
    e.take(out);
  }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST_P(ServerWaits, AHugeRetryAfterIsObeyedOnlyUpToTheCeiling) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path(), {{BRG_OPT_MAX_SERVER_WAIT_MS, 400}, {BRG_OPT_MAX_RETRIES, 2}});
  // The first answer asks for 31 years; the retry succeeds.
  auto t0 = std::chrono::steady_clock::now();
  uint64_t id = submit_keyed(e, m.url(), "k",
                             {{"x-mock-fail-key", "huge-" + std::to_string(backend())},
                              {"x-mock-fail-times", "1"},
                              {"x-mock-retry-after", "1000000000"}});
  std::map<uint64_t, ResultPtr> out;
  await(e, out, id, std::chrono::seconds(10));
  ASSERT_TRUE(out.count(id)) << "still waiting after 10 s: the server's wait was not bounded";
  EXPECT_EQ(out[id]->status, BRG_OK) << out[id]->error;
  EXPECT_EQ(out[id]->attempts, 2u);
  EXPECT_GE(seconds_since(t0), 0.39);
  EXPECT_LT(seconds_since(t0), 5.0);
}

// The same ceiling for a reset the server announces on a success: "no
// requests left, reset in 1,000,000 hours" pauses the key for the ceiling,
// not for 114 years.
TEST_P(ServerWaits, AHugeRateLimitResetIsObeyedOnlyUpToTheCeiling) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path(), {{BRG_OPT_MAX_SERVER_WAIT_MS, 400}});
  std::map<uint64_t, ResultPtr> out;
  uint64_t first = submit_keyed(e, m.url(), "k", {{"x-mock-ratelimit-reset-requests", "1000000h"}});
  await(e, out, first, std::chrono::seconds(5));
  ASSERT_TRUE(out.count(first));
  ASSERT_EQ(out[first]->status, BRG_OK) << out[first]->error;
  auto t0 = std::chrono::steady_clock::now();
  uint64_t next = submit_keyed(e, m.url(), "k", {});
  await(e, out, next, std::chrono::seconds(10));
  ASSERT_TRUE(out.count(next)) << "still waiting after 10 s: the announced reset was not bounded";
  EXPECT_EQ(out[next]->status, BRG_OK) << out[next]->error;
  EXPECT_GE(seconds_since(t0), 0.3) << "the key did not pause for the (clamped) reset at all";
  EXPECT_LT(seconds_since(t0), 5.0);
}

TEST_P(ServerWaits, WaitingForACoolingKeyEndsAtTheAttemptTimeoutAndSaysWhy) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path(), {{BRG_OPT_MAX_RETRIES, 0}});
  // A 429 asking for 30 s cools key "slow" (within the 60 s default ceiling).
  std::map<uint64_t, ResultPtr> out;
  uint64_t first = submit_keyed(e, m.url(), "slow", {{"x-mock-status", "429"}, {"x-mock-retry-after", "30"}});
  await(e, out, first, std::chrono::seconds(5));
  ASSERT_TRUE(out.count(first));
  EXPECT_EQ(out[first]->http_status, 429);
  // The next ones, with a 300 ms attempt timeout, must not wait 30 s.
  auto t0 = std::chrono::steady_clock::now();
  std::vector<uint64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(submit_keyed(e, m.url(), "slow", {}, 300));
  for (uint64_t id : ids) await(e, out, id, std::chrono::seconds(5));
  for (uint64_t id : ids) {
    ASSERT_TRUE(out.count(id)) << "request still waiting for its key after 5 s";
    EXPECT_EQ(out[id]->status, BRG_E_TIMEOUT);
    EXPECT_EQ(out[id]->attempts, 0u) << "never sent";
    std::string err = out[id]->error;
    EXPECT_NE(err.find("for limit key 'slow'"), std::string::npos) << err;
    EXPECT_NE(err.find("cooling down"), std::string::npos) << err;
  }
  EXPECT_GE(seconds_since(t0), 0.29);
  EXPECT_LT(seconds_since(t0), 3.0);
}

TEST_P(ServerWaits, AKeyCoolingDownDoesNotSlowAnotherKey) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path(), {{BRG_OPT_MAX_INFLIGHT, 4}, {BRG_OPT_MAX_RETRIES, 0}});
  std::map<uint64_t, ResultPtr> out;
  uint64_t first = submit_keyed(e, m.url(), "cold", {{"x-mock-status", "429"}, {"x-mock-retry-after", "30"}});
  await(e, out, first, std::chrono::seconds(5));
  ASSERT_TRUE(out.count(first));
  // Twenty requests wait 30 s for "cold" (more than MAX_INFLIGHT)...
  std::vector<uint64_t> cold;
  for (int i = 0; i < 20; ++i) cold.push_back(submit_keyed(e, m.url(), "cold", {}));
  brg_poll(e.get(), 0);
  // ...while twenty on "warm" go through four slots at once.
  auto t0 = std::chrono::steady_clock::now();
  std::vector<uint64_t> warm;
  for (int i = 0; i < 20; ++i) warm.push_back(submit_keyed(e, m.url(), "warm", {{"x-mock-latency-ms", "20"}}));
  for (uint64_t id : warm) await(e, out, id, std::chrono::seconds(10));
  double took = seconds_since(t0);
  for (uint64_t id : warm) {
    ASSERT_TRUE(out.count(id)) << "a request on key 'warm' waited behind key 'cold'";
    EXPECT_EQ(out[id]->status, BRG_OK) << out[id]->error;
  }
  EXPECT_LT(took, 5.0);  // five rounds of 20 ms; the cooling key would make it 30 s
  struct brg_stats s = e.stats();
  EXPECT_EQ(s.waiting_rate, 20u);
  EXPECT_EQ(s.in_flight, 0u) << "waiting for a key holds no in-flight slot";
  for (uint64_t id : cold) EXPECT_EQ(brg_cancel(e.get(), id), 0);
  for (uint64_t id : cold) await(e, out, id, std::chrono::seconds(2));
  for (uint64_t id : cold) {
    ASSERT_TRUE(out.count(id));
    EXPECT_EQ(out[id]->status, BRG_E_CANCELLED);
  }
  EXPECT_EQ(e.stats().waiting_rate, 0u);
}

// A listener nobody accepts from: the kernel completes TCP handshakes into
// the backlog, and the ClientHello is never answered.
struct BlackHole {
  int fd = -1;
  uint16_t port = 0;
  BlackHole() {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 1024) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ADD_FAILURE() << "black hole listener";
      return;
    }
    port = ntohs(a.sin_port);
  }
  ~BlackHole() {
    if (fd >= 0) close(fd);
  }
};

TEST_P(ServerWaits, AStalledHandshakeCostsItsRequestsOneConnectTimeoutTogether) {
  BlackHole hole;
  ASSERT_NE(hole.port, 0);
  Engine e(backend(), "", {{BRG_OPT_CONNECT_TIMEOUT_MS, 300}, {BRG_OPT_MAX_RETRIES, 0}});
  std::string url = "https://127.0.0.1:" + std::to_string(hole.port) + "/v1/chat/completions";
  auto t0 = std::chrono::steady_clock::now();
  std::vector<uint64_t> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(submit_keyed(e, url, "hole", {}));
  std::map<uint64_t, ResultPtr> out;
  for (uint64_t id : ids) await(e, out, id, std::chrono::seconds(10));
  double took = seconds_since(t0);
  for (uint64_t id : ids) {
    ASSERT_TRUE(out.count(id));
    EXPECT_EQ(out[id]->status, BRG_E_TIMEOUT) << out[id]->error;
    EXPECT_NE(std::string(out[id]->error).find("300 ms"), std::string::npos) << out[id]->error;
  }
  // One timeout for all twenty; in series it was 20 x 0.3 s = 6 s.
  EXPECT_LT(took, 1.5);
}

TEST_P(ServerWaits, StalledHandshakesToOneOriginDoNotDelayAnother) {
  BlackHole hole;
  ASSERT_NE(hole.port, 0);
  MockEndpoint m = MockEndpoint::start();
  // HTTP/1.1 only: one connection per request, so the dead origin asks for
  // forty handshakes at once against a cap of sixteen.
  Engine e(backend(), m.ca->path(),
           {{BRG_OPT_HTTP_VERSION, 1}, {BRG_OPT_MAX_HANDSHAKES, 16}, {BRG_OPT_CONNECT_TIMEOUT_MS, 3000},
            {BRG_OPT_MAX_RETRIES, 0}});
  std::string dead = "https://127.0.0.1:" + std::to_string(hole.port) + "/v1/chat/completions";
  std::vector<uint64_t> stalled;
  for (int i = 0; i < 40; ++i) stalled.push_back(submit_keyed(e, dead, "dead", {}));
  for (int i = 0; i < 5; ++i) brg_poll(e.get(), 10);  // the dead origin's handshakes are under way
  auto t0 = std::chrono::steady_clock::now();
  std::vector<uint64_t> healthy;
  for (int i = 0; i < 20; ++i) healthy.push_back(submit_keyed(e, m.url(), "alive", {}));
  std::map<uint64_t, ResultPtr> out;
  for (uint64_t id : healthy) await(e, out, id, std::chrono::seconds(10));
  double took = seconds_since(t0);
  for (uint64_t id : healthy) {
    ASSERT_TRUE(out.count(id));
    EXPECT_EQ(out[id]->status, BRG_OK) << out[id]->error;
  }
  // Behind the dead origin's connect timeout it would take 3 s.
  EXPECT_LT(took, 1.5);
  for (uint64_t id : stalled) brg_cancel(e.get(), id);
}

INSTANTIATE_TEST_SUITE_P(Backends, ServerWaits, ::testing::Values(BRG_BACKEND_IO_URING, BRG_BACKEND_EPOLL),
                         backend_label);

}  // namespace
}  // namespace barrage::testing
