// Unit tests for engine/http/h2_session and h2_request: the client session
// talks to an in-process nghttp2 server session, bytes pumped both ways in
// memory, so no socket is involved. Covers request conversion, concurrency
// limits, flow control, size limits, resets, GOAWAY, protocol errors,
// cancellation, 1xx and trailers.
#include "http/h2_request.hpp"
#include "http/h2_session.hpp"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <list>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "barrage.h"
#include "http/request_writer.hpp"
#include "http/url.hpp"

namespace barrage::http {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

void* tag(uintptr_t n) { return reinterpret_cast<void*>(n); }
uintptr_t untag(void* p) { return reinterpret_cast<uintptr_t>(p); }

std::string make_wire(std::string_view method, std::string_view url_text, std::string_view body = {},
                      std::vector<HeaderView> headers = {}) {
  Url url;
  EXPECT_EQ(parse_url(url_text, true, url), "");
  std::string wire;
  EXPECT_EQ(write_request(wire, method, url, headers.data(), headers.size(), body, "0.1.0"), "");
  return wire;
}

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = char('a' + (i * 7 + i / 251) % 26);
  return s;
}

// ---- in-process HTTP/2 server ---------------------------------------------

class TestServer {
 public:
  struct Request {
    Fields headers;
    std::string body;
    bool ended = false;
    int64_t rst_code = -1;  // RST_STREAM error code from the client, -1 if none
    std::string header(std::string_view name) const {
      for (const auto& h : headers) {
        if (h.first == name) return h.second;
      }
      return "<absent>";
    }
  };

  // auto_window false: the server never widens its receive windows, so an
  // upload stalls after the first 64 KiB.
  explicit TestServer(std::vector<nghttp2_settings_entry> settings = {}, bool auto_window = true) {
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &TestServer::begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, &TestServer::header_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &TestServer::data_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &TestServer::frame_cb);
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_window_update(opt, auto_window ? 0 : 1);
    nghttp2_session_server_new2(&s, cbs, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  }
  ~TestServer() { nghttp2_session_del(s); }

  void feed(std::string_view bytes) {
    const ssize_t rv = nghttp2_session_mem_recv(s, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    ASSERT_EQ(rv, ssize_t(bytes.size())) << nghttp2_strerror(int(rv));
  }
  std::string drain() {
    std::string out;
    for (;;) {
      const uint8_t* p = nullptr;
      const ssize_t n = nghttp2_session_mem_send(s, &p);
      if (n <= 0) break;
      out.append(reinterpret_cast<const char*>(p), size_t(n));
    }
    return out;
  }

  // Final response; chunk > 0 caps each DATA frame; trailers end the stream
  // with a HEADERS frame instead of the last DATA.
  void respond(int32_t id, int status, std::string body, Fields headers = {}, size_t chunk = 0,
               bool trailers = false) {
    Fields all = {{":status", std::to_string(status)}};
    for (auto& h : headers) all.push_back(h);
    auto nv = to_nv(all);
    Body& b = bodies_[id];
    b = Body{std::move(body), 0, chunk, trailers};
    nghttp2_data_provider prd;
    prd.source.ptr = &b;
    prd.read_callback = &TestServer::read_cb;
    ASSERT_EQ(nghttp2_submit_response(s, id, nv.data(), nv.size(), &prd), 0);
  }
  void send_headers(int32_t id, Fields fields, bool end_stream) {
    auto nv = to_nv(fields);
    ASSERT_EQ(nghttp2_submit_headers(s, end_stream ? NGHTTP2_FLAG_END_STREAM : NGHTTP2_FLAG_NONE, id,
                                     nullptr, nv.data(), nv.size(), nullptr),
              0);
  }
  void rst(int32_t id, uint32_t code) { ASSERT_EQ(nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, code), 0); }
  void goaway(int32_t last_id, uint32_t code = NGHTTP2_NO_ERROR) {
    ASSERT_EQ(nghttp2_submit_goaway(s, NGHTTP2_FLAG_NONE, last_id, code, nullptr, 0), 0);
  }

  nghttp2_session* s = nullptr;
  std::map<int32_t, Request> requests;
  std::vector<int32_t> ended_order;        // requests fully received, in order
  int ping_acks = 0;
  std::function<void(int32_t)> on_request;  // called when a request has ended

 private:
  struct Body {
    std::string data;
    size_t off = 0;
    size_t chunk = 0;
    bool trailers = false;
  };

  static std::vector<nghttp2_nv> to_nv(Fields& fields) {
    std::vector<nghttp2_nv> nv;
    for (auto& f : fields) {
      nv.push_back({reinterpret_cast<uint8_t*>(f.first.data()), reinterpret_cast<uint8_t*>(f.second.data()),
                    f.first.size(), f.second.size(), NGHTTP2_NV_FLAG_NONE});
    }
    return nv;
  }
  static TestServer& self(void* ud) { return *static_cast<TestServer*>(ud); }

  static int begin_headers(nghttp2_session*, const nghttp2_frame* f, void* ud) {
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
      self(ud).requests[f->hd.stream_id];
    }
    return 0;
  }
  static int header_cb(nghttp2_session*, const nghttp2_frame* f, const uint8_t* n, size_t nl,
                       const uint8_t* v, size_t vl, uint8_t, void* ud) {
    self(ud).requests[f->hd.stream_id].headers.emplace_back(std::string(reinterpret_cast<const char*>(n), nl),
                                                            std::string(reinterpret_cast<const char*>(v), vl));
    return 0;
  }
  static int data_cb(nghttp2_session*, uint8_t, int32_t id, const uint8_t* d, size_t n, void* ud) {
    self(ud).requests[id].body.append(reinterpret_cast<const char*>(d), n);
    return 0;
  }
  static int frame_cb(nghttp2_session*, const nghttp2_frame* f, void* ud) {
    TestServer& t = self(ud);
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
      t.requests[f->hd.stream_id].ended = true;
      t.ended_order.push_back(f->hd.stream_id);
      if (t.on_request) t.on_request(f->hd.stream_id);
    } else if (f->hd.type == NGHTTP2_RST_STREAM) {
      t.requests[f->hd.stream_id].rst_code = f->rst_stream.error_code;
    } else if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK)) {
      ++t.ping_acks;
    }
    return 0;
  }
  static ssize_t read_cb(nghttp2_session* session, int32_t id, uint8_t* buf, size_t len, uint32_t* flags,
                         nghttp2_data_source* src, void*) {
    Body& b = *static_cast<Body*>(src->ptr);
    size_t n = std::min(len, b.data.size() - b.off);
    if (b.chunk) n = std::min(n, b.chunk);
    std::memcpy(buf, b.data.data() + b.off, n);
    b.off += n;
    if (b.off == b.data.size()) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (b.trailers) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        std::string name = "x-usage", value = "42";
        nghttp2_nv nv = {reinterpret_cast<uint8_t*>(name.data()), reinterpret_cast<uint8_t*>(value.data()),
                         name.size(), value.size(), NGHTTP2_NV_FLAG_NONE};
        nghttp2_submit_trailer(session, id, &nv, 1);
      }
    }
    return ssize_t(n);
  }

  std::map<int32_t, Body> bodies_;
};

// ---- client-side event recorder -------------------------------------------

struct Recorder final : H2Events {
  struct End {
    bool ok = false;
    int status = 0;  // brg_status for errors
    std::string message;
    bool unprocessed = false;
    int http_status = 0;
    std::string body;
    std::string content_type;
    Fields headers;
  };

  void on_first_byte(void* u) noexcept override { ++first_bytes[untag(u)]; }
  bool on_data(void* u, Response& r, const char* p, size_t n) noexcept override {
    data[untag(u)].append(p, n);
    ++chunks[untag(u)];
    if (dropping.count(untag(u))) body_held[untag(u)].push_back(r.body().size());
    return !dropping.count(untag(u));
  }
  void on_complete(void* u, Response& r) noexcept override {
    End e;
    e.ok = true;
    e.http_status = r.status();
    e.body = std::move(r.body());
    e.content_type = std::string(r.header("Content-Type"));
    e.headers = r.headers();
    record(untag(u), std::move(e));
  }
  void on_stream_error(void* u, int status, std::string message, bool unprocessed) noexcept override {
    End e;
    e.status = status;
    e.message = std::move(message);
    e.unprocessed = unprocessed;
    record(untag(u), std::move(e));
  }
  void record(uintptr_t t, End e) {
    ++count[t];
    ends[t] = std::move(e);
    order.push_back(t);
    if (hook) hook(t);
  }

  std::map<uintptr_t, End> ends;
  std::map<uintptr_t, int> count, first_bytes, chunks;
  std::map<uintptr_t, std::string> data;
  std::set<uintptr_t> dropping;                     // streams whose reader keeps no body
  std::map<uintptr_t, std::vector<size_t>> body_held;  // their body's size at each chunk
  std::vector<uintptr_t> order;
  std::function<void(uintptr_t)> hook;
};

// ---- fixture: client + server + pump --------------------------------------

class H2SessionTest : public ::testing::Test {
 protected:
  void start(H2Options options = {}, std::vector<nghttp2_settings_entry> server_settings = {},
             bool server_auto_window = true) {
    options.tls = true;
    server = std::make_unique<TestServer>(std::move(server_settings), server_auto_window);
    std::string err;
    ASSERT_TRUE(client.init(&rec, options, &out, &err)) << err;
    EXPECT_FALSE(out.empty());  // preface + SETTINGS
  }

  // Moves bytes both ways until neither side has anything to say. split > 0
  // feeds the client in pieces of that size, each from a fresh heap copy.
  void pump(size_t split = 0) {
    for (int round = 0; round < 10000; ++round) {
      client.flush();
      bool moved = false;
      if (!out.empty()) {
        std::string bytes;
        bytes.swap(out);
        server->feed(bytes);
        moved = true;
      }
      const std::string back = server->drain();
      if (!back.empty()) {
        moved = true;
        if (split == 0) {
          client_ok = client.feed(back.data(), back.size()) && client_ok;
        } else {
          for (size_t i = 0; i < back.size(); i += split) {
            const std::string piece = back.substr(i, split);
            client_ok = client.feed(piece.data(), piece.size()) && client_ok;
          }
        }
      }
      if (!moved) return;
    }
    ADD_FAILURE() << "pump did not settle";
  }

  // The wire must outlive its stream, as the engine's request does.
  int32_t submit(std::string wire, uintptr_t t, bool keep_body = true) {
    wires.push_back(std::move(wire));
    std::string err;
    const int32_t id = client.submit(wires.back(), keep_body, tag(t), &err);
    EXPECT_GT(id, 0) << err;
    return id;
  }

  void expect_each_reported_once() {
    for (const auto& [t, n] : rec.count) EXPECT_EQ(n, 1) << "stream tag " << t;
  }

  std::list<std::string> wires;  // declared first: destroyed after the session
  Recorder rec;
  std::string out;
  H2Session client;
  std::unique_ptr<TestServer> server;
  bool client_ok = true;
};

// ---- request conversion ---------------------------------------------------

TEST(H2RequestBuilder, ConvertsRequestLineAndHeaders) {
  const std::string wire =
      "POST /v1/chat?x=1 HTTP/1.1\r\nHost: api.example.com:8443\r\nAuthorization: Bearer k\r\n"
      "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nProxy-Connection: x\r\nUpgrade: h2c\r\n"
      "TE: gzip\r\nX-Custom:   spaced value  \r\nContent-Length: 2\r\n\r\n{}";
  H2RequestBuilder b;
  ASSERT_EQ(b.build(wire, "https"), H2RequestBuilder::Result::ok) << b.reason();
  std::vector<std::pair<std::string_view, std::string_view>> got;
  for (const auto& f : b.fields()) got.emplace_back(f.name, f.value);
  const std::vector<std::pair<std::string_view, std::string_view>> want = {
      {":method", "POST"},          {":scheme", "https"},         {":authority", "api.example.com:8443"},
      {":path", "/v1/chat?x=1"},    {"authorization", "Bearer k"}, {"x-custom", "spaced value"},
      {"content-length", "2"}};
  EXPECT_EQ(got, want);
  EXPECT_EQ(b.body(), "{}");
}

TEST(H2RequestBuilder, KeepsTeTrailersOnly) {
  H2RequestBuilder b;
  ASSERT_EQ(b.build("GET / HTTP/1.1\r\nHost: h\r\nTE: trailers\r\n\r\n", "http"), H2RequestBuilder::Result::ok);
  ASSERT_EQ(b.fields().size(), 5u);
  EXPECT_EQ(b.fields()[1].value, "http");
  EXPECT_EQ(b.fields()[4].name, "te");
  EXPECT_EQ(b.fields()[4].value, "trailers");
}

TEST(H2RequestBuilder, RefusesMalformedWire) {
  H2RequestBuilder b;
  const char* bad[] = {
      "GET / HTTP/1.1\r\nHost: h\r\n",                                      // no blank line
      "GET HTTP/1.1\r\nHost: h\r\n\r\n",                                    // no target
      "GET / SPDY/3\r\nHost: h\r\n\r\n",                                    // not HTTP/1.x
      "GET / HTTP/1.1\r\n\r\n",                                             // no Host
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",                       // two Hosts
      "GET / HTTP/1.1\r\nHost: h\r\nBroken line\r\n\r\n",                   // no colon
      "GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",                       // obs-fold
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n{}",          // length mismatch
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n",
  };
  for (const char* w : bad) {
    EXPECT_EQ(b.build(w, "https"), H2RequestBuilder::Result::invalid) << w;
    EXPECT_TRUE(b.fields().empty());
    EXPECT_STRNE(b.reason(), "");
  }
}

// ---- session ----------------------------------------------------------------

TEST_F(H2SessionTest, GetSendsPseudoHeadersAndNoConnectionHeaders) {
  start();
  const std::vector<HeaderView> h = {{"Authorization", "Bearer sk-1"}, {"X-Trace", "abc"}};
  const std::string wire = make_wire("GET", "https://api.example.com/v1/models?limit=2", "", h);
  const int32_t id = submit(wire, 1);
  EXPECT_EQ(client.active_streams(), 1u);
  server->on_request = [&](int32_t sid) {
    server->respond(sid, 200, "{\"ok\":true}", {{"content-type", "application/json"}});
  };
  pump();
  ASSERT_EQ(server->requests.count(id), 1u);
  const auto& req = server->requests[id];
  EXPECT_EQ(req.header(":method"), "GET");
  EXPECT_EQ(req.header(":scheme"), "https");
  EXPECT_EQ(req.header(":authority"), "api.example.com");
  EXPECT_EQ(req.header(":path"), "/v1/models?limit=2");
  EXPECT_EQ(req.header("authorization"), "Bearer sk-1");
  EXPECT_EQ(req.header("x-trace"), "abc");
  EXPECT_EQ(req.header("user-agent"), "barrage/0.1.0");
  for (const char* gone : {"host", "connection", "keep-alive", "transfer-encoding", "upgrade"}) {
    EXPECT_EQ(req.header(gone), "<absent>") << gone;
  }
  for (const auto& f : req.headers) {
    for (char c : f.first) EXPECT_FALSE(c >= 'A' && c <= 'Z') << f.first;
  }
  EXPECT_TRUE(req.body.empty());

  ASSERT_EQ(rec.count[1], 1);
  const auto& e = rec.ends[1];
  EXPECT_TRUE(e.ok);
  EXPECT_EQ(e.http_status, 200);
  EXPECT_EQ(e.body, "{\"ok\":true}");
  EXPECT_EQ(e.content_type, "application/json");
  EXPECT_EQ(rec.first_bytes[1], 1);
  EXPECT_EQ(client.active_streams(), 0u);
  EXPECT_TRUE(client_ok);
  EXPECT_TRUE(client.can_submit());
  EXPECT_FALSE(client.going_away());
}

TEST_F(H2SessionTest, AdvertisesLargeWindowsAndNoPush) {
  start();
  pump();
  EXPECT_EQ(nghttp2_session_get_remote_settings(server->s, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE), 16u << 20);
  EXPECT_EQ(nghttp2_session_get_remote_settings(server->s, NGHTTP2_SETTINGS_ENABLE_PUSH), 0u);
  EXPECT_EQ(nghttp2_session_get_remote_window_size(server->s), int32_t(64u << 20));
  EXPECT_TRUE(client.wants_io());
}

TEST_F(H2SessionTest, PingIsAnsweredByTheFlushAfterFeed) {
  start();
  pump();
  ASSERT_EQ(nghttp2_submit_ping(server->s, NGHTTP2_FLAG_NONE, nullptr), 0);
  pump();
  EXPECT_EQ(server->ping_acks, 1);
  EXPECT_TRUE(rec.count.empty());
}

TEST_F(H2SessionTest, HeadResponseWithContentLengthHasNoBody) {
  start();
  submit(make_wire("HEAD", "https://h/x"), 1);
  server->on_request = [&](int32_t sid) {
    server->send_headers(sid, {{":status", "200"}, {"content-length", "1234"}}, true);
  };
  pump();
  ASSERT_EQ(rec.count[1], 1);
  EXPECT_TRUE(rec.ends[1].ok) << rec.ends[1].message;
  EXPECT_TRUE(rec.ends[1].body.empty());
}

TEST_F(H2SessionTest, PostBodyArrivesExactlyIncludingLargeBodies) {
  start();
  const std::string small = "{\"model\":\"m\",\"messages\":[]}";
  const std::string large = pattern(300 * 1024);  // beyond the server's 64 KiB default window
  const std::string w1 = make_wire("POST", "https://api.example.com/v1/chat/completions", small);
  const std::string w2 = make_wire("POST", "https://api.example.com/v1/chat/completions", large);
  const std::string w3 = make_wire("POST", "https://api.example.com/v1/empty");  // POST, empty body
  const int32_t a = submit(w1, 1), b = submit(w2, 2), c = submit(w3, 3);
  server->on_request = [&](int32_t sid) { server->respond(sid, 200, "done"); };
  pump(7);
  EXPECT_EQ(server->requests[a].body, small);
  EXPECT_EQ(server->requests[a].header("content-length"), std::to_string(small.size()));
  EXPECT_EQ(server->requests[a].header("content-type"), "application/json");
  EXPECT_EQ(server->requests[a].header(":method"), "POST");
  EXPECT_EQ(server->requests[b].body.size(), large.size());
  EXPECT_TRUE(server->requests[b].body == large);
  EXPECT_EQ(server->requests[c].header("content-length"), "0");
  EXPECT_TRUE(server->requests[c].ended);
  for (uintptr_t t : {1, 2, 3}) {
    ASSERT_EQ(rec.count[t], 1) << t;
    EXPECT_TRUE(rec.ends[t].ok);
    EXPECT_EQ(rec.ends[t].body, "done");
  }
  EXPECT_TRUE(client_ok);
}

TEST_F(H2SessionTest, FlushBudgetBoundsOutputAndLosesNothing) {
  start();
  pump();
  const std::string big = pattern(1u << 20);
  const int32_t id = submit(make_wire("POST", "https://h/upload", big), 1);
  server->on_request = [&](int32_t sid) { server->respond(sid, 200, "got it"); };
  constexpr size_t kBudget = 32 * 1024;
  size_t rounds = 0;
  for (; rounds < 1000 && rec.count.empty(); ++rounds) {
    client.flush(kBudget);
    // Whole frames only: at most one frame (16 KiB payload) past the budget.
    EXPECT_LT(out.size(), kBudget + 16384 + 9);
    std::string bytes;
    bytes.swap(out);
    server->feed(bytes);
    const std::string back = server->drain();
    EXPECT_TRUE(client.feed(back.data(), back.size()));
  }
  EXPECT_GT(rounds, 20u);
  EXPECT_TRUE(server->requests[id].body == big);
  EXPECT_TRUE(rec.ends[1].ok);
  EXPECT_EQ(rec.ends[1].body, "got it");
}

TEST_F(H2SessionTest, HundredStreamsRespectServerConcurrencyLimit) {
  start({}, {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 10}});
  EXPECT_EQ(client.max_concurrent_streams(), 100u);  // nghttp2's assumption before SETTINGS
  pump();                                             // SETTINGS exchange
  EXPECT_EQ(client.max_concurrent_streams(), 10u);

  const std::string wire = make_wire("POST", "https://api.example.com/v1/x", "{}");
  uintptr_t next = 0;
  size_t peak = 0;
  std::vector<int32_t> pending;  // server-side requests not yet answered
  server->on_request = [&](int32_t sid) { pending.push_back(sid); };
  while (next < 100 || client.active_streams() > 0) {
    while (next < 100 && client.can_submit()) submit(wire, ++next);
    peak = std::max(peak, client.active_streams());
    if (next < 100) {
      EXPECT_FALSE(client.can_submit());
      EXPECT_EQ(client.active_streams(), 10u);
    }
    pump();
    // Answer half of what is open, so streams finish in waves.
    const size_t answer = std::max<size_t>(1, pending.size() / 2);
    for (size_t i = 0; i < answer && i < pending.size(); ++i) server->respond(pending[i], 200, "r");
    pending.erase(pending.begin(), pending.begin() + std::min(answer, pending.size()));
    pump();
  }
  EXPECT_EQ(peak, 10u);
  EXPECT_EQ(rec.count.size(), 100u);
  for (uintptr_t t = 1; t <= 100; ++t) EXPECT_TRUE(rec.ends[t].ok) << t;
  expect_each_reported_once();
  EXPECT_EQ(server->requests.size(), 100u);
  EXPECT_TRUE(client_ok);
}

class H2WindowTest : public H2SessionTest, public ::testing::WithParamInterface<std::pair<uint32_t, uint32_t>> {};

TEST_P(H2WindowTest, OneMebibyteBodyFlowsWithoutCallerHelp) {
  H2Options o;
  o.stream_window = GetParam().first;
  o.connection_window = GetParam().second;
  start(o);
  const std::string body = pattern(1u << 20);
  submit(make_wire("GET", "https://api.example.com/big"), 1);
  server->on_request = [&](int32_t sid) { server->respond(sid, 200, body); };
  pump();
  ASSERT_EQ(rec.count[1], 1);
  ASSERT_TRUE(rec.ends[1].ok) << rec.ends[1].message;
  EXPECT_EQ(rec.ends[1].body.size(), body.size());
  EXPECT_TRUE(rec.ends[1].body == body);
  EXPECT_TRUE(rec.data[1] == body);
}

INSTANTIATE_TEST_SUITE_P(Windows, H2WindowTest,
                         ::testing::Values(std::make_pair(16u << 20, 64u << 20),  // defaults
                                           std::make_pair(65535u, 65535u)));      // protocol minimum

TEST_F(H2SessionTest, BodyOverLimitFailsThatStreamOnly) {
  H2Options o;
  o.max_body_bytes = 1000;
  start(o);
  const int32_t big = submit(make_wire("GET", "https://h/big"), 1);
  const int32_t ok = submit(make_wire("GET", "https://h/ok"), 2);
  server->on_request = [&](int32_t sid) {
    server->respond(sid, 200, sid == big ? pattern(5000) : pattern(1000), {}, 300);
  };
  pump();
  ASSERT_EQ(rec.count[1], 1);
  EXPECT_FALSE(rec.ends[1].ok);
  EXPECT_EQ(rec.ends[1].status, BRG_E_TOO_LARGE);
  EXPECT_FALSE(rec.ends[1].unprocessed);
  EXPECT_NE(rec.ends[1].message.find("1000"), std::string::npos) << rec.ends[1].message;
  EXPECT_EQ(server->requests[big].rst_code, NGHTTP2_CANCEL);
  ASSERT_EQ(rec.count[2], 1);
  EXPECT_TRUE(rec.ends[2].ok);
  EXPECT_EQ(rec.ends[2].body, pattern(1000));
  EXPECT_EQ(server->requests[ok].rst_code, -1);
  EXPECT_TRUE(client_ok);
  EXPECT_FALSE(client.going_away());

  // The connection is still good for new streams.
  submit(make_wire("GET", "https://h/again"), 3);
  pump();
  EXPECT_TRUE(rec.ends[3].ok);
  expect_each_reported_once();
}

// A reader that takes the body piece by piece (a stream of events whose
// final result carries no body): after its first chunk the stream keeps
// nothing, so neither memory nor the body limit grows with the stream.
TEST_F(H2SessionTest, AReaderThatDropsTheBodyStopsItsStreamKeepingIt) {
  H2Options o;
  o.max_body_bytes = 1000;
  start(o);
  rec.dropping.insert(1);
  submit(make_wire("GET", "https://h/long"), 1);
  submit(make_wire("GET", "https://h/kept"), 2);
  server->on_request = [&](int32_t sid) { server->respond(sid, 200, pattern(5000), {}, 300); };
  pump();
  ASSERT_EQ(rec.count[1], 1);
  EXPECT_TRUE(rec.ends[1].ok) << rec.ends[1].message;
  EXPECT_EQ(rec.ends[1].body, "");
  EXPECT_TRUE(rec.data[1] == pattern(5000));  // every byte still passed on, in order
  ASSERT_GE(rec.body_held[1].size(), 2u);
  EXPECT_GT(rec.body_held[1][0], 0u);  // the first chunk was stored before the reader spoke
  for (size_t i = 1; i < rec.body_held[1].size(); ++i) EXPECT_EQ(rec.body_held[1][i], 0u) << i;
  // The other stream on the connection keeps its body and its limit.
  ASSERT_EQ(rec.count[2], 1);
  EXPECT_FALSE(rec.ends[2].ok);
  EXPECT_EQ(rec.ends[2].status, BRG_E_TOO_LARGE);
  expect_each_reported_once();
}

TEST_F(H2SessionTest, HeadersOverLimitFailsThatStreamOnly) {
  H2Options o;
  o.max_header_bytes = 200;
  start(o);
  const int32_t big = submit(make_wire("GET", "https://h/a"), 1);
  submit(make_wire("GET", "https://h/b"), 2);
  server->on_request = [&](int32_t sid) {
    if (sid == big) {
      server->respond(sid, 200, "x", {{"x-big", std::string(300, 'v')}});
    } else {
      server->respond(sid, 200, "y", {{"x-small", "v"}});
    }
  };
  pump();
  EXPECT_EQ(rec.ends[1].status, BRG_E_TOO_LARGE);
  EXPECT_EQ(server->requests[big].rst_code, NGHTTP2_CANCEL);
  EXPECT_TRUE(rec.ends[2].ok);
  expect_each_reported_once();
}

TEST_F(H2SessionTest, RefusedStreamIsUnprocessed) {
  start();
  const int32_t id = submit(make_wire("POST", "https://h/x", "{}"), 1);
  server->on_request = [&](int32_t sid) { server->rst(sid, NGHTTP2_REFUSED_STREAM); };
  pump();
  ASSERT_EQ(rec.count[1], 1);
  EXPECT_FALSE(rec.ends[1].ok);
  EXPECT_TRUE(rec.ends[1].unprocessed);
  EXPECT_EQ(rec.ends[1].status, BRG_E_IO);
  EXPECT_GT(id, 0);
  EXPECT_TRUE(client.can_submit());
}

TEST_F(H2SessionTest, InternalErrorResetIsIoAndProcessed) {
  start();
  submit(make_wire("POST", "https://h/x", "{}"), 1);
  server->on_request = [&](int32_t sid) { server->rst(sid, NGHTTP2_INTERNAL_ERROR); };
  pump();
  ASSERT_EQ(rec.count[1], 1);
  EXPECT_EQ(rec.ends[1].status, BRG_E_IO);
  EXPECT_FALSE(rec.ends[1].unprocessed);
  EXPECT_NE(rec.ends[1].message.find("INTERNAL_ERROR"), std::string::npos) << rec.ends[1].message;
}

TEST_F(H2SessionTest, ResetAfterHeadersIsIo) {
  start();
  submit(make_wire("GET", "https://h/x"), 1);
  server->on_request = [&](int32_t sid) { server->send_headers(sid, {{":status", "200"}}, false); };
  pump();
  EXPECT_EQ(rec.first_bytes[1], 1);
  EXPECT_EQ(rec.count[1], 0);
  server->rst(1, NGHTTP2_INTERNAL_ERROR);
  pump();
  EXPECT_EQ(rec.ends[1].status, BRG_E_IO);
  expect_each_reported_once();
}

TEST_F(H2SessionTest, GoawayRefusesStreamsAboveLastId) {
  start();
  const std::string wire = make_wire("GET", "https://h/x");
  std::vector<int32_t> ids;
  for (uintptr_t t = 1; t <= 4; ++t) ids.push_back(submit(wire, t));
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 3, 5, 7}));
  pump();  // the server has all four, answers none yet
  ASSERT_EQ(server->ended_order.size(), 4u);

  server->goaway(3);
  pump();
  EXPECT_TRUE(client.going_away());
  EXPECT_FALSE(client.can_submit());
  for (uintptr_t t : {3, 4}) {  // streams 5 and 7
    ASSERT_EQ(rec.count[t], 1) << t;
    EXPECT_TRUE(rec.ends[t].unprocessed);
    EXPECT_EQ(rec.ends[t].status, BRG_E_IO);
  }
  EXPECT_EQ(rec.count[1], 0);
  EXPECT_EQ(rec.count[2], 0);
  EXPECT_EQ(client.active_streams(), 2u);

  std::string err;
  EXPECT_EQ(client.submit(wire, true, tag(9), &err), BRG_E_CLOSED);
  EXPECT_FALSE(err.empty());

  server->respond(1, 200, "one");
  server->respond(3, 200, "three");
  pump();
  EXPECT_TRUE(rec.ends[1].ok);
  EXPECT_EQ(rec.ends[1].body, "one");
  EXPECT_TRUE(rec.ends[2].ok);
  EXPECT_EQ(rec.ends[2].body, "three");
  EXPECT_EQ(rec.count.count(9), 0u);
  expect_each_reported_once();
  EXPECT_TRUE(client_ok);
  EXPECT_FALSE(client.wants_io());  // nothing left: the caller may close
}

TEST_F(H2SessionTest, GoawayAlsoFailsStreamsStillQueuedByConcurrencyLimit) {
  start({}, {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 2}});
  pump();
  const std::string wire = make_wire("GET", "https://h/x");
  for (uintptr_t t = 1; t <= 4; ++t) submit(wire, t);  // 5 and 7 wait inside nghttp2
  pump();
  EXPECT_EQ(server->ended_order.size(), 2u);
  server->goaway(3);
  pump();
  EXPECT_TRUE(rec.ends[3].unprocessed);
  EXPECT_TRUE(rec.ends[4].unprocessed);
  server->respond(1, 200, "a");
  server->respond(3, 200, "b");
  pump();
  EXPECT_TRUE(rec.ends[1].ok);
  EXPECT_TRUE(rec.ends[2].ok);
  EXPECT_EQ(server->requests.count(5), 0u);  // never sent
  expect_each_reported_once();
}

TEST_F(H2SessionTest, GarbageAtStartIsConnectionError) {
  start();
  submit(make_wire("GET", "https://h/x"), 1);
  client.flush();
  out.clear();
  const std::string junk = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
  EXPECT_FALSE(client.feed(junk.data(), junk.size()));
  EXPECT_NE(client.error().find("SETTINGS"), std::string::npos) << client.error();
  EXPECT_TRUE(client.failed());
  EXPECT_TRUE(client.going_away());
  EXPECT_FALSE(client.can_submit());
  ASSERT_EQ(rec.count[1], 1);
  EXPECT_EQ(rec.ends[1].status, BRG_E_PROTOCOL);
  EXPECT_FALSE(out.empty());  // the GOAWAY is queued for sending
  EXPECT_FALSE(client.feed("x", 1));
  std::string err;
  EXPECT_LT(client.submit(make_wire("GET", "https://h/x"), true, tag(2), &err), 0);
  EXPECT_EQ(rec.count[1], 1);
}

TEST_F(H2SessionTest, InvalidFrameMidSessionFailsOpenStreams) {
  start();
  pump();
  submit(make_wire("GET", "https://h/x"), 1);
  submit(make_wire("GET", "https://h/y"), 2);
  pump();
  // A DATA frame on stream 0 is a connection error (RFC 9113 6.1).
  const char frame[] = {0, 0, 1, 0 /*DATA*/, 0, 0, 0, 0, 0, 'x'};
  EXPECT_FALSE(client.feed(frame, sizeof frame));
  EXPECT_NE(client.error().find("PROTOCOL_ERROR"), std::string::npos) << client.error();
  for (uintptr_t t : {1, 2}) {
    ASSERT_EQ(rec.count[t], 1);
    EXPECT_EQ(rec.ends[t].status, BRG_E_PROTOCOL);
    EXPECT_FALSE(rec.ends[t].unprocessed);
  }
}

TEST_F(H2SessionTest, CancelSendsRstCancelAndReportsNothing) {
  start();
  const int32_t id = submit(make_wire("POST", "https://h/x", "{}"), 1);
  const int32_t other = submit(make_wire("POST", "https://h/y", "{}"), 2);
  pump();
  client.cancel(id);
  EXPECT_EQ(client.active_streams(), 1u);
  client.cancel(id);  // twice: ignored
  pump();
  EXPECT_EQ(server->requests[id].rst_code, NGHTTP2_CANCEL);
  server->respond(other, 200, "ok");
  pump();
  EXPECT_EQ(rec.count.count(1), 0u);
  EXPECT_EQ(rec.first_bytes.count(1), 0u);
  EXPECT_TRUE(rec.ends[2].ok);

  // Cancelled before its HEADERS ever left: nothing is sent, nothing reported.
  const int32_t unsent = submit(make_wire("GET", "https://h/z"), 3);
  client.cancel(unsent);
  pump();
  EXPECT_EQ(rec.count.count(3), 0u);
  EXPECT_EQ(server->requests.count(unsent), 0u);
  EXPECT_TRUE(client_ok);
  EXPECT_EQ(client.active_streams(), 0u);
}

TEST(H2Session, CancelFromAnEventStopsFurtherEvents) {
  // Cancels on the first byte: no data and no completion may follow.
  struct Canceller final : H2Events {
    H2Session* c = nullptr;
    int32_t id = 0;
    int events = 0;
    void on_first_byte(void*) noexcept override {
      ++events;
      c->cancel(id);
    }
    bool on_data(void*, Response&, const char*, size_t) noexcept override {
      ++events;
      return true;
    }
    void on_complete(void*, Response&) noexcept override { ++events; }
    void on_stream_error(void*, int, std::string, bool) noexcept override { ++events; }
  };
  Canceller can;
  H2Session c2;
  std::string out2, err;
  ASSERT_TRUE(c2.init(&can, {}, &out2, &err));
  can.c = &c2;
  TestServer srv;
  srv.on_request = [&](int32_t sid) { srv.respond(sid, 200, pattern(10000), {}, 1000); };
  const std::string wire = make_wire("GET", "https://h/x");
  can.id = c2.submit(wire, true, tag(1), &err);
  for (int i = 0; i < 100; ++i) {
    c2.flush();
    if (!out2.empty()) {
      srv.feed(out2);
      out2.clear();
    }
    const std::string b = srv.drain();
    if (b.empty() && out2.empty()) break;
    c2.feed(b.data(), b.size());
  }
  EXPECT_EQ(can.events, 1);
  EXPECT_EQ(srv.requests[can.id].rst_code, NGHTTP2_CANCEL);
  EXPECT_EQ(c2.active_streams(), 0u);
}

TEST_F(H2SessionTest, DataChunksArriveInOrder) {
  start();
  const std::string body = pattern(50000);
  submit(make_wire("GET", "https://h/stream"), 1, /*keep_body=*/false);
  submit(make_wire("GET", "https://h/kept"), 2, /*keep_body=*/true);
  server->on_request = [&](int32_t sid) { server->respond(sid, 200, body, {}, 977); };
  pump(100);
  EXPECT_GT(rec.chunks[1], 50);
  EXPECT_TRUE(rec.data[1] == body);
  EXPECT_TRUE(rec.ends[1].ok);
  EXPECT_TRUE(rec.ends[1].body.empty());  // streaming only
  EXPECT_TRUE(rec.data[2] == body);
  EXPECT_TRUE(rec.ends[2].body == body);
}

TEST_F(H2SessionTest, InformationalResponsesAreSkipped) {
  start();
  submit(make_wire("POST", "https://h/x", "{}"), 1);
  server->on_request = [&](int32_t sid) {
    server->send_headers(sid, {{":status", "100"}, {"x-interim", "1"}}, false);
    server->send_headers(sid, {{":status", "103"}, {"link", "</a>"}}, false);
    server->respond(sid, 200, "final", {{"x-final", "1"}});
  };
  pump();
  ASSERT_EQ(rec.count[1], 1);
  EXPECT_TRUE(rec.ends[1].ok);
  EXPECT_EQ(rec.ends[1].http_status, 200);
  EXPECT_EQ(rec.ends[1].body, "final");
  EXPECT_EQ(rec.first_bytes[1], 1);
  EXPECT_EQ(rec.ends[1].headers, (Fields{{"x-final", "1"}}));
}

TEST_F(H2SessionTest, TrailersAreAccepted) {
  start();
  submit(make_wire("GET", "https://h/x"), 1);
  server->on_request = [&](int32_t sid) { server->respond(sid, 200, "body", {{"trailer", "x-usage"}}, 0, true); };
  pump();
  ASSERT_EQ(rec.count[1], 1);
  EXPECT_TRUE(rec.ends[1].ok) << rec.ends[1].message;
  EXPECT_EQ(rec.ends[1].body, "body");
  EXPECT_EQ(rec.ends[1].headers, (Fields{{"trailer", "x-usage"}}));  // trailers not kept
}

TEST_F(H2SessionTest, HeadersOnlyResponseCompletes) {
  start();
  submit(make_wire("GET", "https://h/x"), 1);
  server->on_request = [&](int32_t sid) { server->send_headers(sid, {{":status", "204"}}, true); };
  pump();
  EXPECT_TRUE(rec.ends[1].ok);
  EXPECT_EQ(rec.ends[1].http_status, 204);
}

TEST_F(H2SessionTest, EarlyResponseCancelsRestOfUpload) {
  start({}, {}, /*server_auto_window=*/false);
  const std::string big = pattern(1u << 20);  // more than the server's stream window
  const int32_t id = submit(make_wire("POST", "https://h/upload", big), 1);
  pump();
  ASSERT_FALSE(server->requests[id].ended);
  server->respond(id, 413, "too big");
  pump();
  ASSERT_EQ(rec.count[1], 1);
  EXPECT_TRUE(rec.ends[1].ok);
  EXPECT_EQ(rec.ends[1].http_status, 413);
  EXPECT_EQ(server->requests[id].rst_code, NGHTTP2_CANCEL);
  EXPECT_TRUE(client_ok);
}

TEST_F(H2SessionTest, MalformedResponseIsProtocolErrorForThatStream) {
  start();
  submit(make_wire("GET", "https://h/x"), 1);
  submit(make_wire("GET", "https://h/y"), 2);
  server->on_request = [&](int32_t sid) {
    if (sid == 1) {
      // Content-Length says 10, the body has 3 bytes.
      server->respond(sid, 200, "abc", {{"content-length", "10"}});
    } else {
      server->respond(sid, 200, "fine");
    }
  };
  pump();
  EXPECT_EQ(rec.ends[1].status, BRG_E_PROTOCOL);
  EXPECT_FALSE(rec.ends[1].message.empty());
  EXPECT_TRUE(rec.ends[2].ok);
  EXPECT_TRUE(client_ok);
  expect_each_reported_once();
}

TEST_F(H2SessionTest, FailAllReportsEveryOpenStreamOnce) {
  start();
  submit(make_wire("GET", "https://h/x"), 1);
  pump();
  submit(make_wire("GET", "https://h/y"), 2);  // not flushed: HEADERS never left
  // An event that cancels the other stream must not produce a second report.
  rec.hook = [&](uintptr_t t) {
    if (t == 1) client.cancel(3);
  };
  client.fail_all(BRG_E_IO, "connection reset by peer");
  EXPECT_EQ(rec.ends[1].status, BRG_E_IO);
  EXPECT_FALSE(rec.ends[1].unprocessed);
  EXPECT_EQ(rec.ends[1].message, "connection reset by peer");
  EXPECT_EQ(rec.count.count(2), 0u);  // cancelled from the event before its turn
  EXPECT_TRUE(client.failed());
  EXPECT_EQ(client.active_streams(), 0u);
  client.fail_all(BRG_E_IO, "again");
  expect_each_reported_once();
}

TEST_F(H2SessionTest, FailAllMarksUnsentStreamsUnprocessed) {
  start();
  submit(make_wire("GET", "https://h/x"), 1);
  client.fail_all(BRG_E_IO, "connection reset by peer");
  EXPECT_TRUE(rec.ends[1].unprocessed);
}

TEST_F(H2SessionTest, SubmitFromCompletionIsSentOnNextFlush) {
  start();
  const std::string wire = make_wire("GET", "https://h/x");
  submit(wire, 1);
  server->on_request = [&](int32_t sid) { server->respond(sid, 200, "r"); };
  uintptr_t next = 1;
  rec.hook = [&](uintptr_t) {
    if (next < 20) submit(wire, ++next);
  };
  pump();
  EXPECT_EQ(rec.count.size(), 20u);
  for (uintptr_t t = 1; t <= 20; ++t) EXPECT_TRUE(rec.ends[t].ok) << t;
  expect_each_reported_once();
}

TEST_F(H2SessionTest, InvalidWireIsRefusedWithoutEvent) {
  start();
  std::string err;
  EXPECT_EQ(client.submit("not http", true, tag(1), &err), BRG_E_INVALID);
  EXPECT_FALSE(err.empty());
  EXPECT_EQ(client.active_streams(), 0u);
  pump();
  EXPECT_TRUE(rec.count.empty());
}

TEST(H2Session, AlpnListIsWireFormat) {
  EXPECT_EQ(kAlpnH2Http11.size(), 12u);
  EXPECT_EQ(kAlpnH2Http11[0], 2);
  EXPECT_EQ(kAlpnH2Http11.substr(1, 2), "h2");
  EXPECT_EQ(kAlpnH2Http11[3], 8);
  EXPECT_EQ(kAlpnH2Http11.substr(4), "http/1.1");
}

TEST(H2Session, UninitialisedSessionRefusesEverything) {
  H2Session s;
  std::string err;
  EXPECT_LT(s.submit("GET / HTTP/1.1\r\nHost: h\r\n\r\n", true, nullptr, &err), 0);
  EXPECT_FALSE(s.feed("x", 1));
  EXPECT_FALSE(s.flush());
  EXPECT_FALSE(s.can_submit());
  EXPECT_FALSE(s.wants_io());
  s.cancel(1);
}

}  // namespace
}  // namespace barrage::http
