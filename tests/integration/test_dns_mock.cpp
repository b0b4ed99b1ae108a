// Host names through the engine's asynchronous resolver (c-ares on the
// reactor), over real TLS against the mock endpoint, on both backends. Every
// lookup goes to a loopback DNS server (BRG_OPT_DNS_SERVERS), never off the
// machine: unresolvable names, TTL caching, fallback between families.
#include <thread>

#include "capi_harness.hpp"
#include "loopback_dns.hpp"
#include "test_ca.hpp"

namespace barrage::testing {
namespace {

class DnsMock : public ::testing::TestWithParam<int> {
 protected:
  int backend() const { return GetParam(); }

  // An engine asking only the loopback DNS server, kept until the test ends.
  brg_engine* engine(const std::string& ca, const std::string& dns, std::vector<std::pair<brg_option, int64_t>> opts = {}) {
    engines_.push_back(make_engine(backend(), [&](brg_config* c) {
      for (auto [k, v] : opts) EXPECT_EQ(brg_config_set_int(c, k, v), 0);
      EXPECT_EQ(brg_config_set_str(c, BRG_OPT_CA_FILE, ca.c_str()), 0);
      EXPECT_EQ(brg_config_set_str(c, BRG_OPT_DNS_SERVERS, dns.c_str()), 0);
    }));
    return engines_.back().get();
  }

  static std::vector<ResultPtr> run(brg_engine* e, const std::string& url, int n) {
    return run_requests(e, url, n, chat_body("by name"));
  }

  // A mock whose certificate names `name` (and nothing else).
  static MockEndpoint named_mock(const std::string& name, const std::string& host = "127.0.0.1") {
    std::string err;
    auto ca = mock::TestCa::create(&err);
    mock::CertBundle b = ca.issue({"DNS:" + name}, &err);
    EXPECT_TRUE(b.ok()) << err;
    mock::MockOptions o;
    o.host = host;
    o.cert_pem = b.cert_pem;
    o.key_pem = b.key_pem;
    MockEndpoint m = MockEndpoint::start(o);
    m.ca = std::make_unique<TempFile>(b.ca_pem);
    return m;
  }

 private:
  std::vector<EnginePtr> engines_;
};

TEST_P(DnsMock, AnUnresolvableNameIsADnsErrorWithTheResolversMessage) {
  LoopbackDns dns;
  MockEndpoint m = MockEndpoint::start();
  brg_engine* e = engine(m.ca->path(), dns.server());
  auto results = run(e, "https://nope.test:" + std::to_string(m.server->port()) + "/v1/chat/completions", 3);
  for (auto& r : results) {
    EXPECT_EQ(r->status, BRG_E_DNS);
    EXPECT_NE(std::string(r->error).find("cannot resolve 'nope.test': Domain name not found"), std::string::npos)
        << r->error;
    EXPECT_EQ(r->attempts, 1u);
  }
  EXPECT_EQ(m.server->stats().connections_accepted, 0u);
  // The three requests shared one lookup (or its cached failure): A and AAAA once.
  EXPECT_LE(dns.queries("nope.test"), 2);
}

TEST_P(DnsMock, ANameResolvesAndItsCertificateIsVerifiedAgainstThatName) {
  LoopbackDns dns;
  dns.set("api.test", {"127.0.0.1"}, 60);
  MockEndpoint m = named_mock("api.test");
  brg_engine* e = engine(m.ca->path(), dns.server(), {{BRG_OPT_MAX_INFLIGHT, 8}});
  auto results = run(e, "https://api.test:" + std::to_string(m.server->port()) + "/v1/chat/completions", 40);
  for (auto& r : results) EXPECT_EQ(r->status, BRG_OK) << r->error;
  EXPECT_LE(dns.queries("api.test"), 2);  // one lookup, cached for the rest

  // The same server by IP: the certificate does not name it.
  auto by_ip = run(e, m.url(), 1);
  EXPECT_EQ(by_ip[0]->status, BRG_E_TLS) << by_ip[0]->error;
}

TEST_P(DnsMock, AnExpiredAnswerIsLookedUpAgain) {
  LoopbackDns dns;
  dns.set("ttl.test", {"127.0.0.1"}, 1);
  MockEndpoint m = named_mock("ttl.test");
  // Idle connections close at once, so the second request needs a new one.
  brg_engine* e = engine(m.ca->path(), dns.server(), {{BRG_OPT_IDLE_TIMEOUT_MS, 1}});
  std::string url = "https://ttl.test:" + std::to_string(m.server->port()) + "/v1/chat/completions";
  EXPECT_EQ(run(e, url, 1)[0]->status, BRG_OK);
  int first = dns.queries("ttl.test");
  EXPECT_GE(first, 1);
  for (int i = 0; i < 5; ++i) brg_poll(e, 10);  // the idle timer closes the connection
  struct brg_stats st{};
  st.size = sizeof st;
  brg_stats(e, &st);
  EXPECT_EQ(st.connections_open, 0u);
  std::this_thread::sleep_for(std::chrono::milliseconds(2200));
  EXPECT_EQ(run(e, url, 1)[0]->status, BRG_OK);
  EXPECT_GT(dns.queries("ttl.test"), first);
}

TEST_P(DnsMock, AFailedConnectFallsBackToTheOtherFamily) {
  LoopbackDns dns;
  // AAAA answers first (A is held back), so ::1 is tried first; nothing listens there.
  dns.set("dual.test", {"::1", "127.0.0.1"}, 60);
  dns.set_delay(28 /* AAAA */, std::chrono::milliseconds(0));
  dns.set_delay(1 /* A */, std::chrono::milliseconds(80));
  MockEndpoint m = named_mock("dual.test", "127.0.0.1");
  brg_engine* e = engine(m.ca->path(), dns.server());
  auto results = run(e, "https://dual.test:" + std::to_string(m.server->port()) + "/v1/chat/completions", 5);
  for (auto& r : results) {
    EXPECT_EQ(r->status, BRG_OK) << r->error;
    EXPECT_EQ(r->attempts, 1u);  // the second address is part of the same attempt
  }
}

TEST_P(DnsMock, LocalhostResolvesToBothFamilies) {
  LoopbackDns dns;
  for (const char* host : {"127.0.0.1", "::1"}) {
    mock::MockOptions o;
    o.host = host;
    MockEndpoint m = MockEndpoint::start(o);
    brg_engine* e = engine(m.ca->path(), dns.server());
    auto results = run(e, "https://localhost:" + std::to_string(m.server->port()) + "/v1/chat/completions", 3);
    for (auto& r : results) EXPECT_EQ(r->status, BRG_OK) << "mock on " << host << ": " << r->error;
  }
  EXPECT_EQ(dns.total_queries(), 0);  // RFC 6761: localhost never goes to DNS
}

TEST_P(DnsMock, BadDnsServersFailEngineCreation) {
  brg_config* c = brg_config_new();
  EXPECT_EQ(brg_config_set_str(c, BRG_OPT_DNS_SERVERS, "not an address"), 0);
  brg_engine* e = nullptr;
  EXPECT_EQ(brg_engine_new(c, &e), BRG_E_INVALID);
  EXPECT_NE(std::string(brg_last_error()).find("DNS"), std::string::npos) << brg_last_error();
  brg_config_free(c);
}

INSTANTIATE_TEST_SUITE_P(Backends, DnsMock, ::testing::Values(BRG_BACKEND_IO_URING, BRG_BACKEND_EPOLL),
                         backend_label);

}  // namespace
}  // namespace barrage::testing
