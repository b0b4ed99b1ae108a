// HTTPS through an HTTP CONNECT proxy (BRG_OPT_PROXY / HTTPS_PROXY), over
// real TLS against the mock endpoint, on both backends: the tunnel carries
// end-to-end TLS (the origin's certificate and name are still verified),
// credentials, NO_PROXY, and each way the proxy can refuse.
#include "capi_harness.hpp"
#include "support/connect_proxy.hpp"

namespace barrage::testing {
namespace {

using test_support::ConnectProxy;
using test_support::ConnectProxyOptions;

class ProxyMock : public ::testing::TestWithParam<int> {
 protected:
  int backend() const { return GetParam(); }

  // An engine for this backend with the given proxy settings, kept until the test ends.
  brg_engine* engine(const std::string& ca, const std::string& proxy, const std::string& no_proxy = "") {
    engines_.push_back(make_engine(backend(), [&](brg_config* c) {
      EXPECT_EQ(brg_config_set_int(c, BRG_OPT_MAX_INFLIGHT, 10), 0);
      if (!ca.empty()) EXPECT_EQ(brg_config_set_str(c, BRG_OPT_CA_FILE, ca.c_str()), 0);
      EXPECT_EQ(brg_config_set_str(c, BRG_OPT_PROXY, proxy.c_str()), 0);
      EXPECT_EQ(brg_config_set_str(c, BRG_OPT_NO_PROXY, no_proxy.c_str()), 0);
    }));
    return engines_.back().get();
  }

  static std::vector<ResultPtr> run(brg_engine* e, const std::string& url, int n) {
    return run_requests(e, url, n, chat_body("through the proxy"));
  }

  static std::string proxy_url(const ConnectProxy& p, const std::string& userinfo = "") {
    return "http://" + userinfo + "127.0.0.1:" + std::to_string(p.port());
  }

 private:
  std::vector<EnginePtr> engines_;
};

TEST_P(ProxyMock, RequestsTunnelToTheOriginWhichTheProxyResolves) {
  MockEndpoint m = MockEndpoint::start();
  ConnectProxy proxy;
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  brg_engine* e = engine(m.ca->path(), proxy_url(proxy));
  std::string url = "https://localhost:" + std::to_string(m.server->port()) + "/v1/chat/completions";
  auto results = run(e, url, 50);
  for (auto& r : results) {
    ASSERT_EQ(r->status, BRG_OK) << r->error;
    EXPECT_NE(std::string(r->body, r->body_len).find("through the proxy"), std::string::npos);
  }
  struct brg_stats s{};
  s.size = sizeof s;
  brg_stats(e, &s);
  // Every connection was one CONNECT to the origin by name; keep-alive reused them.
  EXPECT_EQ(proxy.connect_count(), s.connections_opened);
  EXPECT_LE(s.connections_opened, 10u);
  for (const std::string& t : proxy.targets()) EXPECT_EQ(t, "localhost:" + std::to_string(m.server->port()));
  EXPECT_EQ(m.server->stats().requests, 50u);
}

TEST_P(ProxyMock, TheOriginCertificateIsStillVerifiedThroughTheTunnel) {
  MockEndpoint m = MockEndpoint::start();
  ConnectProxy proxy;
  brg_engine* e = engine("", proxy_url(proxy));  // the mock's CA is not trusted
  auto results = run(e, m.url(), 1);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0]->status, BRG_E_TLS) << results[0]->error;
  EXPECT_EQ(proxy.connect_count(), 1u);
}

TEST_P(ProxyMock, CredentialsAreSentAndNeverShownInErrors) {
  MockEndpoint m = MockEndpoint::start();
  ConnectProxyOptions opts;
  opts.user = "alice";
  opts.password = "s3cr@t";
  ConnectProxy proxy(opts);
  brg_engine* good = engine(m.ca->path(), proxy_url(proxy, "alice:s3cr%40t@"));
  for (auto& r : run(good, m.url(), 5)) EXPECT_EQ(r->status, BRG_OK) << r->error;

  brg_engine* bad = engine(m.ca->path(), proxy_url(proxy, "alice:wrong-secret@"));
  auto results = run(bad, m.url(), 1);
  const brg_result& r = *results[0];
  EXPECT_EQ(r.status, BRG_E_CONNECT);
  std::string err = r.error;
  EXPECT_NE(err.find("407"), std::string::npos) << err;
  EXPECT_EQ(err.find("wrong-secret"), std::string::npos) << err;
  EXPECT_EQ(err.find("alice"), std::string::npos) << err;
}

TEST_P(ProxyMock, NoProxyHostsGoDirect) {
  MockEndpoint m = MockEndpoint::start();
  ConnectProxy proxy;
  brg_engine* e = engine(m.ca->path(), proxy_url(proxy), "example.com, 127.0.0.0/8");
  for (auto& r : run(e, m.url(), 5)) EXPECT_EQ(r->status, BRG_OK) << r->error;
  EXPECT_EQ(proxy.connect_count(), 0u);
  EXPECT_EQ(m.server->stats().requests, 5u);
}

TEST_P(ProxyMock, ARefusedTargetIsAConnectErrorNamingTheProxy) {
  MockEndpoint m = MockEndpoint::start();
  ConnectProxyOptions opts;
  opts.refuse.push_back("127.0.0.1:" + std::to_string(m.server->port()));
  ConnectProxy proxy(opts);
  brg_engine* e = engine(m.ca->path(), proxy_url(proxy));
  auto results = run(e, m.url(), 1);
  EXPECT_EQ(results[0]->status, BRG_E_CONNECT);
  EXPECT_NE(std::string(results[0]->error).find("refused CONNECT"), std::string::npos) << results[0]->error;
  EXPECT_NE(std::string(results[0]->error).find("403"), std::string::npos) << results[0]->error;
}

TEST_P(ProxyMock, AProxyThatIsNotThereIsAConnectError) {
  MockEndpoint m = MockEndpoint::start();
  uint16_t port;
  {
    ConnectProxy gone;
    port = gone.port();
  }
  brg_engine* e = engine(m.ca->path(), "http://127.0.0.1:" + std::to_string(port));
  auto results = run(e, m.url(), 1);
  EXPECT_EQ(results[0]->status, BRG_E_CONNECT);
  EXPECT_NE(std::string(results[0]->error).find("proxy 127.0.0.1:"), std::string::npos) << results[0]->error;
}

TEST_P(ProxyMock, AProxyThatAnswersGarbageIsAProtocolError) {
  MockEndpoint m = MockEndpoint::start();
  ConnectProxyOptions opts;
  opts.canned_reply = "SSH-2.0-OpenSSH_9.2\r\n";
  ConnectProxy proxy(opts);
  brg_engine* e = engine(m.ca->path(), proxy_url(proxy));
  auto results = run(e, m.url(), 1);
  EXPECT_EQ(results[0]->status, BRG_E_PROTOCOL) << results[0]->error;
}

TEST_P(ProxyMock, BadProxySettingsFailEngineCreation) {
  for (const char* bad : {"socks5://127.0.0.1:1080", "https://127.0.0.1:3128", "http://127.0.0.1"}) {
    brg_config* c = brg_config_new();
    EXPECT_EQ(brg_config_set_str(c, BRG_OPT_PROXY, bad), 0);
    brg_engine* e = nullptr;
    EXPECT_EQ(brg_engine_new(c, &e), BRG_E_INVALID) << bad;
    EXPECT_NE(std::string(brg_last_error()).find("HTTPS_PROXY"), std::string::npos) << brg_last_error();
    EXPECT_EQ(e, nullptr);
    brg_config_free(c);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, ProxyMock, ::testing::Values(BRG_BACKEND_IO_URING, BRG_BACKEND_EPOLL),
                         backend_label);

}  // namespace
}  // namespace barrage::testing
