// nginx (an independent implementation) through the C ABI over real TLS, on
// both backends. HTTP/2: ALPN picks h2, streams are multiplexed up to the
// server's SETTINGS_MAX_CONCURRENT_STREAMS, more connections open only when
// those are full, forcing either protocol works, cancel resets one stream.
// SSE: nginx's echo module streams at a known pace over h1 and h2.
#include "capi_harness.hpp"
#include "nginx_fixture.hpp"

namespace barrage::testing {
namespace {

class H2Nginx : public ::testing::TestWithParam<int> {
 protected:
  int backend() const { return GetParam(); }
};

#define REQUIRE_NGINX(peer)                                           \
  do {                                                                \
    if ((peer).missing()) GTEST_SKIP() << "nginx is not installed";   \
    ASSERT_TRUE((peer).ok()) << "nginx_peer.py up failed";            \
  } while (0)

// Up to 100 in flight: what one HTTP/2 connection carries before the
// server's SETTINGS say more (OriginPool opens for 100 streams each until then).
TEST_P(H2Nginx, AlpnPicksH2AndOneConnectionCarriesEveryRequest) {
  NginxPeer peer("--h2");
  REQUIRE_NGINX(peer);
  Engine e(backend(), peer.ca(), {{BRG_OPT_MAX_INFLIGHT, 100}});
  for (int i = 0; i < 600; ++i) e.submit(peer.url("/"), "{}");
  auto results = e.collect(600);
  for (auto& [id, r] : results) {
    ASSERT_EQ(r->status, BRG_OK) << r->error;
    EXPECT_EQ(r->http_status, 200);
    EXPECT_EQ(std::string(r->body, r->body_len), peer.body());
    EXPECT_EQ(r->prompt_tokens, 17);
    EXPECT_EQ(r->completion_tokens, 42);
  }
  struct brg_stats s = e.stats();
  EXPECT_EQ(s.completed, 600u);
  EXPECT_EQ(s.connections_opened, 1u);
}

// 300 waiting before anything is known: three connections at once, as
// HTTP/2 at 100 streams each would need (a far server's ramp is then one
// connection set-up, not two in series); once nginx's SETTINGS allow 1,000
// streams, no more open for the next 300, and every request is answered.
TEST_P(H2Nginx, ConnectionsOpenAtOnceForWhatHttp2WouldNeedThenNoMore) {
  NginxPeer peer("--h2");
  REQUIRE_NGINX(peer);
  for (int forced : {0, 2}) {
    SCOPED_TRACE(forced ? "HTTP_VERSION=2" : "ALPN");
    Engine e(backend(), peer.ca(), {{BRG_OPT_MAX_INFLIGHT, 300}, {BRG_OPT_HTTP_VERSION, forced}});
    for (int i = 0; i < 300; ++i) e.submit(peer.url("/"), "{}");
    auto first = e.collect(300);
    for (auto& [id, r] : first) ASSERT_EQ(r->status, BRG_OK) << r->error;
    EXPECT_EQ(e.stats().connections_opened, 3u);
    for (int i = 0; i < 300; ++i) e.submit(peer.url("/"), "{}");
    auto second = e.collect(300);
    for (auto& [id, r] : second) ASSERT_EQ(r->status, BRG_OK) << r->error;
    EXPECT_EQ(e.stats().connections_opened, 3u);
  }
}

TEST_P(H2Nginx, MoreConnectionsOpenOnlyWhenStreamsAreFull) {
  NginxPeer peer("--h2 --h2-streams 10");
  REQUIRE_NGINX(peer);
  Engine e(backend(), peer.ca(), {{BRG_OPT_MAX_INFLIGHT, 95}});
  for (int i = 0; i < 400; ++i) e.submit(peer.url("/sleep/50"), "{}");
  auto results = e.collect(400);
  for (auto& [id, r] : results) ASSERT_EQ(r->status, BRG_OK) << r->error;
  // 95 in flight over 10 streams per connection: ten connections, not 95.
  EXPECT_EQ(e.stats().connections_opened, 10u);
}

TEST_P(H2Nginx, GoawayRetriesTheUnprocessedStreamsOnANewConnection) {
  // After 50 requests on a connection nginx sends GOAWAY: streams past its
  // last stream id were never processed and go to a new connection.
  NginxPeer peer("--h2 --keepalive-requests 50");
  REQUIRE_NGINX(peer);
  Engine e(backend(), peer.ca(), {{BRG_OPT_MAX_INFLIGHT, 120}, {BRG_OPT_MAX_RETRIES, 0}});
  for (int i = 0; i < 600; ++i) e.submit(peer.url("/"), "{}");
  auto results = e.collect(600);
  for (auto& [id, r] : results) {
    ASSERT_EQ(r->status, BRG_OK) << r->error;
    EXPECT_EQ(r->attempts, 1u);  // re-sending an unprocessed stream is not a retry
    EXPECT_EQ(std::string(r->body, r->body_len), peer.body());
  }
  struct brg_stats s = e.stats();
  EXPECT_GE(s.connections_opened, 12u);  // 600 / 50
  EXPECT_EQ(s.retried, 0u);
}

TEST_P(H2Nginx, ForcedHttp11UsesAConnectionPerRequestInFlight) {
  NginxPeer peer("--h2");
  REQUIRE_NGINX(peer);
  Engine e(backend(), peer.ca(), {{BRG_OPT_MAX_INFLIGHT, 40}, {BRG_OPT_HTTP_VERSION, 1}});
  for (int i = 0; i < 200; ++i) e.submit(peer.url("/sleep/50"), "{}");
  auto results = e.collect(200);
  for (auto& [id, r] : results) {
    ASSERT_EQ(r->status, BRG_OK) << r->error;
    EXPECT_EQ(std::string(r->body, r->body_len), peer.body());
  }
  EXPECT_EQ(e.stats().connections_opened, 40u);
}

TEST_P(H2Nginx, ForcedHttp2AgainstAnHttp11ServerIsAProtocolError) {
  NginxPeer peer("");
  REQUIRE_NGINX(peer);
  Engine e(backend(), peer.ca(), {{BRG_OPT_HTTP_VERSION, 2}, {BRG_OPT_MAX_RETRIES, 0}});
  e.submit(peer.url("/"), "{}");
  auto results = e.collect(1);
  const brg_result& r = *results.begin()->second;
  // nginx refuses the handshake itself (RFC 7301 no_application_protocol
  // alert); a laxer server completes it without ALPN and the engine refuses.
  std::string err = r.error;
  if (r.status == BRG_E_TLS)
    EXPECT_NE(err.find("no application protocol"), std::string::npos) << err;
  else
    EXPECT_NE(err.find("did not agree to HTTP/2"), std::string::npos) << err;
  EXPECT_TRUE(r.status == BRG_E_TLS || r.status == BRG_E_PROTOCOL) << brg_status_name(r.status);
}

TEST_P(H2Nginx, CancelResetsOneStreamAndTheConnectionServesTheRest) {
  NginxPeer peer("--h2");
  REQUIRE_NGINX(peer);
  Engine e(backend(), peer.ca(), {{BRG_OPT_MAX_INFLIGHT, 50}});
  std::vector<uint64_t> slow;
  for (int i = 0; i < 20; ++i) slow.push_back(e.submit(peer.url("/sleep/500"), "{}"));
  for (int i = 0; i < 20; ++i) e.submit(peer.url("/sleep/50"), "{}");
  // Let every stream start, then cancel the slow ones.
  for (int i = 0; i < 10; ++i) brg_poll(e.get(), 10);
  for (uint64_t id : slow) EXPECT_EQ(brg_cancel(e.get(), id), 0);
  auto results = e.collect(40);
  int cancelled = 0, ok = 0;
  for (auto& [id, r] : results) {
    if (r->status == BRG_E_CANCELLED) ++cancelled;
    if (r->status == BRG_OK) ++ok;
  }
  EXPECT_EQ(cancelled, 20);
  EXPECT_EQ(ok, 20);
  EXPECT_EQ(e.stats().connections_opened, 1u);  // cancelling a stream kept the connection
  // The same connection still works.
  e.submit(peer.url("/"), "{}");
  auto more = e.collect(1);
  EXPECT_EQ(more.begin()->second->status, BRG_OK);
  EXPECT_EQ(e.stats().connections_opened, 1u);
}

TEST_P(H2Nginx, BodyLimitFailsOneStreamOnly) {
  NginxPeer peer("--h2");
  REQUIRE_NGINX(peer);
  Engine e(backend(), peer.ca(), {{BRG_OPT_MAX_RESPONSE_BYTES, 100}, {BRG_OPT_MAX_RETRIES, 0}});
  for (int i = 0; i < 5; ++i) e.submit(peer.url("/"), "{}");
  auto results = e.collect(5);
  for (auto& [id, r] : results) EXPECT_EQ(r->status, BRG_E_TOO_LARGE) << r->error;
  EXPECT_EQ(e.stats().connections_opened, 1u);
}

// /sse: role event at once, then " a" .. " e" 100 ms apart (echo_sleep), usage 17/5.
void expect_paced_sse(int backend, int http_version) {
  NginxPeer peer("--h2");
  if (peer.missing()) GTEST_SKIP() << "nginx is not installed";
  ASSERT_TRUE(peer.ok());
  Engine e(backend, peer.ca(), {{BRG_OPT_HTTP_VERSION, http_version}});
  std::string url = peer.url("/sse"), body = "{}";
  brg_request req{};
  req.size = sizeof req;
  req.flags = BRG_REQ_STREAM;
  req.url = url.c_str();
  req.body = body.data();
  req.body_len = body.size();
  req.max_retries = -1;
  ASSERT_EQ(brg_submit(e.get(), &req, nullptr), 0) << brg_last_error();
  std::vector<ResultPtr> partials;
  ResultPtr final;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!final && std::chrono::steady_clock::now() < until) {
    brg_poll(e.get(), 20);
    brg_result* buf[16];
    size_t n;
    while ((n = brg_results(e.get(), buf, 16)) > 0)
      for (size_t i = 0; i < n; ++i)
        if (buf[i]->flags & BRG_RES_PARTIAL)
          partials.emplace_back(buf[i]);
        else
          final.reset(buf[i]);
  }
  ASSERT_TRUE(final);
  ASSERT_EQ(final->status, BRG_OK) << final->error;
  EXPECT_EQ(e.stats().connections_opened, 1u);
  // role, five tokens, finish, usage ([DONE] is not delivered)
  EXPECT_EQ(partials.size(), 8u);
  EXPECT_EQ(final->events, 8u);
  std::string text;
  for (auto& p : partials) {
    EXPECT_EQ(p->http_status, 200);
    EXPECT_EQ(p->status, BRG_OK);
    std::string d(p->body, p->body_len);
    size_t at = d.find("\"content\":\"");
    if (at != std::string::npos) text += d.substr(at + 11, d.find('"', at + 11) - (at + 11));
  }
  EXPECT_EQ(text, " a b c d e");
  EXPECT_EQ(final->prompt_tokens, 17);
  EXPECT_EQ(final->completion_tokens, 5);
  // First token 100 ms after the role event; four 100 ms gaps after it.
  // nginx arms echo_sleep on its cached clock, which can end the sleep a
  // little early by ours (99.908 ms once under ASan): 2 ms of slack.
  EXPECT_GE(final->ttft_us - final->sent_us, 98 * 1000);
  EXPECT_LE(final->ttft_us - final->ttfb_us, 100 * 1000 + 150 * 1000);
  EXPECT_GE(final->gap_mean_us, 100 * 1000 - 10 * 1000);  // a late-read first token shortens the mean
  EXPECT_LE(final->gap_mean_us, 100 * 1000 + 100 * 1000);
  EXPECT_NE(std::string(final->body, final->body_len).find("data: [DONE]"), std::string::npos);
}

TEST_P(H2Nginx, SseStreamsAtTheServersPaceOverHttp2) { expect_paced_sse(backend(), 2); }
TEST_P(H2Nginx, SseStreamsAtTheServersPaceOverHttp11) { expect_paced_sse(backend(), 1); }

// BRG_REQ_HEADERS over both protocols from the same server: one block
// format, names in lower case (nginx writes "Content-Type" over HTTP/1.1),
// no HTTP/2 pseudo-header.
void expect_header_block(int backend, int http_version) {
  NginxPeer peer("--h2");
  if (peer.missing()) GTEST_SKIP() << "nginx is not installed";
  ASSERT_TRUE(peer.ok());
  Engine e(backend, peer.ca(), {{BRG_OPT_HTTP_VERSION, http_version}});
  std::string url = peer.url("/status429"), body = "{}";
  brg_request req{};
  req.size = sizeof req;
  req.flags = BRG_REQ_HEADERS;
  req.url = url.c_str();
  req.body = body.data();
  req.body_len = body.size();
  req.max_retries = 0;
  uint64_t id = 0;
  ASSERT_EQ(brg_submit(e.get(), &req, &id), 0) << brg_last_error();
  auto results = e.collect(1);
  const brg_result& r = *results[id];
  EXPECT_EQ(r.http_status, 429);
  EXPECT_EQ(r.retry_after_ms, 1000);
  const std::string head(r.headers, r.headers_len);
  EXPECT_NE(head.find("content-type: application/json\n"), std::string::npos) << head;
  EXPECT_NE(head.find("retry-after: 1\n"), std::string::npos) << head;
  EXPECT_NE(head.find("server: nginx"), std::string::npos) << head;
  EXPECT_EQ(head.find(':'), head.find(": ")) << "a pseudo-header or an empty name: " << head;
  for (size_t at = 0; at < head.size(); at = head.find('\n', at) + 1) {
    const std::string name = head.substr(at, head.find(':', at) - at);
    for (char ch : name) EXPECT_FALSE(ch >= 'A' && ch <= 'Z') << name;
  }
}

TEST_P(H2Nginx, HeaderBlockOverHttp2) { expect_header_block(backend(), 2); }
TEST_P(H2Nginx, HeaderBlockOverHttp11) { expect_header_block(backend(), 1); }

INSTANTIATE_TEST_SUITE_P(Backends, H2Nginx, ::testing::Values(BRG_BACKEND_IO_URING, BRG_BACKEND_EPOLL),
                         backend_label);

}  // namespace
}  // namespace barrage::testing
