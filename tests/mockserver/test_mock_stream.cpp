// Paced streaming answers of the mock server, read event by event over
// real loopback TLS: event order and contents, the usage chunk, pacing
// (never early, loosely bounded late), stall-after, reset-after, keep-alive
// after a stream, and clients that leave mid-stream. Events are parsed with
// simdjson, which the mock does not use.
#include <gtest/gtest.h>
#include <simdjson.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "mock_server.hpp"
#include "test_client.hpp"

namespace barrage::mock {
namespace {

using testing::ChunkRead;
using testing::HttpResponse;
using testing::make_request;
using testing::ReadEnd;
using testing::TestClient;
using Clock = std::chrono::steady_clock;

// Late bound for every timing check: CI machines are loaded, and the point
// of these tests is "never early" and "not wildly late".
constexpr int64_t kSlackMs = 150;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string stream_body(bool usage, std::string_view text = "hello") {
  std::string b = R"({"model":"m","stream":true,)";
  if (usage) b += R"("stream_options":{"include_usage":true},)";
  b += R"("messages":[{"role":"user","content":")";
  b += text;
  b += R"("}]})";
  return b;
}

std::string stream_request(const std::vector<std::string>& headers, bool usage = true,
                           std::string_view path = "/v1/chat/completions") {
  std::string body = path == "/v1/completions" ? R"({"stream":true,"prompt":"p"})" : stream_body(usage);
  return make_request("POST", path, body, headers);
}

// One SSE event as the client saw it.
struct Event {
  std::string data;  // after "data: ", without the blank line
  Clock::time_point at;
};

struct Stream {
  HttpResponse head;
  Clock::time_point head_at;
  std::vector<Event> events;
  ChunkRead end = ChunkRead::kError;  // what ended the reading
};

// Reads a streamed answer chunk by chunk until the last chunk, a failure,
// or `max_events` events; every chunk must hold exactly one SSE event.
Stream read_stream(TestClient& c, int timeout_ms = 5000, size_t max_events = SIZE_MAX) {
  Stream s;
  if (!c.read_head(&s.head, timeout_ms)) return s;
  s.head_at = Clock::now();
  std::string chunk;
  while (s.events.size() < max_events) {
    s.end = c.read_chunk(&chunk, timeout_ms);
    if (s.end != ChunkRead::kData) break;
    auto at = Clock::now();
    EXPECT_EQ(chunk.rfind("data: ", 0), 0u) << chunk;
    EXPECT_GE(chunk.size(), 8u);
    EXPECT_EQ(chunk.find("\n\n"), chunk.size() - 2) << "one event per chunk: " << chunk;
    s.events.push_back({chunk.substr(6, chunk.size() - 8), at});
  }
  return s;
}

class MockStreamTest : public ::testing::Test {
 protected:
  void start(MockOptions opts = {}) {
    std::string err;
    server_ = MockServer::start(opts, &err);
    ASSERT_NE(server_, nullptr) << err;
    tls_.ca_pem = server_->ca_pem();
  }

  std::unique_ptr<TestClient> connect() {
    std::string err;
    auto c = TestClient::connect(server_->port(), &tls_, &err);
    EXPECT_NE(c, nullptr) << err;
    return c;
  }

  // The delta content (chat) or text (completions) of a token event.
  std::string piece(const Event& e) {
    simdjson::dom::element doc = json_.parse(e.data);
    simdjson::dom::element choice = doc["choices"].at(0);
    std::string_view s;
    if (choice["delta"]["content"].get(s) == simdjson::SUCCESS) return std::string(s);
    if (choice["text"].get(s) == simdjson::SUCCESS) return std::string(s);
    ADD_FAILURE() << "no content in " << e.data;
    return {};
  }

  template <class F>
  bool eventually(F pred) {
    for (int i = 0; i < 300; ++i) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return pred();
  }

  std::unique_ptr<MockServer> server_;
  TestClient::Tls tls_;
  simdjson::dom::parser json_;
};

TEST_F(MockStreamTest, NumberedTokensThenFinishUsageAndDone) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->send(stream_request({"x-mock-stream-tokens: 5"})));
  Stream s = read_stream(*c);
  ASSERT_EQ(s.head.status, 200);
  EXPECT_EQ(s.head.header("content-type"), "text/event-stream");
  EXPECT_EQ(s.head.header("transfer-encoding"), "chunked");
  EXPECT_EQ(s.end, ChunkRead::kLast);
  // role, 5 tokens, finish, usage, [DONE]
  ASSERT_EQ(s.events.size(), 9u);

  simdjson::dom::element role = json_.parse(s.events[0].data);
  EXPECT_EQ(std::string_view(role["object"]), "chat.completion.chunk");
  EXPECT_EQ(std::string_view(role["choices"].at(0)["delta"]["role"]), "assistant");
  EXPECT_EQ(std::string_view(role["choices"].at(0)["delta"]["content"]), "");

  std::string all;
  for (int k = 1; k <= 5; ++k) {
    std::string p = piece(s.events[static_cast<size_t>(k)]);
    EXPECT_EQ(p, " tok" + std::to_string(k));
    all += p;
  }
  EXPECT_EQ(all, " tok1 tok2 tok3 tok4 tok5");

  simdjson::dom::element fin = json_.parse(s.events[6].data);
  EXPECT_EQ(std::string_view(fin["choices"].at(0)["finish_reason"]), "stop");
  EXPECT_EQ(simdjson::dom::object(fin["choices"].at(0)["delta"]).size(), 0u);

  simdjson::dom::element usage = json_.parse(s.events[7].data);
  EXPECT_EQ(simdjson::dom::array(usage["choices"]).size(), 0u);
  EXPECT_EQ(uint64_t(usage["usage"]["completion_tokens"]), 5u);
  EXPECT_EQ(uint64_t(usage["usage"]["total_tokens"]),
            uint64_t(usage["usage"]["prompt_tokens"]) + 5u);
  EXPECT_EQ(s.events[8].data, "[DONE]");

  // All events of one stream share its id.
  std::string_view id = role["id"];
  EXPECT_EQ(std::string_view(usage["id"]), id);

  MockStats st = server_->stats();
  EXPECT_EQ(st.streams, 1u);
  EXPECT_EQ(st.stream_token_events, 5u);
  EXPECT_EQ(st.streams_cancelled, 0u);
}

TEST_F(MockStreamTest, WithoutUsageOrTokenCountTheAnswersWordsAreStreamed) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->send(stream_request({}, false)));
  Stream s = read_stream(*c);
  ASSERT_EQ(s.end, ChunkRead::kLast);
  ASSERT_GE(s.events.size(), 4u);
  EXPECT_EQ(s.events.back().data, "[DONE]");
  std::string all;
  for (size_t i = 1; i + 2 < s.events.size(); ++i) all += piece(s.events[i]);
  EXPECT_EQ(all.rfind("mock answer to ", 0), 0u);
  EXPECT_EQ(all.substr(all.size() - 7), ": hello");
  // No usage chunk: the one before [DONE] is the finish chunk.
  simdjson::dom::element fin = json_.parse(s.events[s.events.size() - 2].data);
  EXPECT_EQ(std::string_view(fin["choices"].at(0)["finish_reason"]), "stop");
}

TEST_F(MockStreamTest, CompletionsStreamHasNoRoleEvent) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->send(stream_request({"x-mock-stream-tokens: 2"}, true, "/v1/completions")));
  Stream s = read_stream(*c);
  ASSERT_EQ(s.end, ChunkRead::kLast);
  ASSERT_EQ(s.events.size(), 4u);  // 2 tokens, finish, [DONE]
  simdjson::dom::element first = json_.parse(s.events[0].data);
  EXPECT_EQ(std::string_view(first["object"]), "text_completion");
  EXPECT_EQ(piece(s.events[0]), " tok1");
  EXPECT_EQ(piece(s.events[1]), " tok2");
}

TEST_F(MockStreamTest, FirstTokenDelayAndIntervalAreNeverEarly) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  constexpr int64_t kFirst = 200, kGap = 50, kTokens = 6;
  auto sent = Clock::now();
  ASSERT_TRUE(c->send(stream_request({"x-mock-stream-tokens: 6", "x-mock-first-token-ms: 200",
                                      "x-mock-stream-interval-ms: 50"})));
  Stream s = read_stream(*c);
  ASSERT_EQ(s.end, ChunkRead::kLast);
  ASSERT_EQ(s.events.size(), static_cast<size_t>(kTokens + 4));
  // The role event comes with the headers, well before the first token.
  EXPECT_LT(ms_between(sent, s.events[0].at), kSlackMs);
  for (int64_t k = 1; k <= kTokens; ++k) {
    double planned = static_cast<double>(kFirst + (k - 1) * kGap);
    const Event& e = s.events[static_cast<size_t>(k)];
    // Against the send time the server cannot be early. Against the head's
    // arrival it can look early by however late the client read the head
    // (2 ms seen under ASan on a loaded machine), so only an upper bound.
    EXPECT_GE(ms_between(sent, e.at), planned) << "token " << k;
    EXPECT_LE(ms_between(s.head_at, e.at), planned + kSlackMs) << "token " << k;
  }
  // The tail follows the last token at once.
  EXPECT_LT(ms_between(s.events[kTokens].at, s.events.back().at), kSlackMs);
}

TEST_F(MockStreamTest, LatencyComesBeforeTheFirstTokenDelay) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  auto sent = Clock::now();
  ASSERT_TRUE(c->send(stream_request(
      {"x-mock-latency-ms: 100", "x-mock-first-token-ms: 100", "x-mock-stream-tokens: 1"})));
  Stream s = read_stream(*c);
  ASSERT_EQ(s.end, ChunkRead::kLast);
  EXPECT_GE(ms_between(sent, s.head_at), 100);
  EXPECT_LE(ms_between(sent, s.head_at), 100 + kSlackMs);
  EXPECT_GE(ms_between(sent, s.events[1].at), 200);
  EXPECT_LE(ms_between(sent, s.events[1].at), 200 + kSlackMs);
}

TEST_F(MockStreamTest, GlobalOptionsPaceEveryStreamAndHeadersOverrideThem) {
  MockOptions o;
  o.stream_tokens = 3;
  o.first_token_ms = 100;
  o.stream_interval_ms = 30;
  start(o);
  auto c = connect();
  ASSERT_NE(c, nullptr);
  auto sent = Clock::now();
  ASSERT_TRUE(c->send(stream_request({})));
  Stream s = read_stream(*c);
  ASSERT_EQ(s.end, ChunkRead::kLast);
  ASSERT_EQ(s.events.size(), 7u);
  EXPECT_EQ(piece(s.events[3]), " tok3");
  EXPECT_GE(ms_between(sent, s.events[3].at), 160);

  // Per request: no delay and one token.
  sent = Clock::now();
  ASSERT_TRUE(c->send(stream_request({"x-mock-first-token-ms: 0", "x-mock-stream-interval-ms: 0",
                                      "x-mock-stream-tokens: 1"})));
  s = read_stream(*c);
  ASSERT_EQ(s.end, ChunkRead::kLast);
  ASSERT_EQ(s.events.size(), 5u);
  EXPECT_LT(ms_between(sent, s.events.back().at), 100);
}

TEST_F(MockStreamTest, ZeroIntervalStreamOfManyTokensArrivesWhole) {
  start();
  auto a = connect(), b = connect();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  // Both on the one worker: the 64-events-per-turn yield interleaves them.
  ASSERT_TRUE(a->send(stream_request({"x-mock-stream-tokens: 3000"})));
  ASSERT_TRUE(b->send(stream_request({"x-mock-stream-tokens: 3000"})));
  for (TestClient* c : {a.get(), b.get()}) {
    Stream s = read_stream(*c, 10000);
    ASSERT_EQ(s.end, ChunkRead::kLast);
    ASSERT_EQ(s.events.size(), 3004u);
    EXPECT_EQ(piece(s.events[3000]), " tok3000");
    simdjson::dom::element usage = json_.parse(s.events[3002].data);
    EXPECT_EQ(uint64_t(usage["usage"]["completion_tokens"]), 3000u);
  }
  EXPECT_EQ(server_->stats().stream_token_events, 6000u);
}

TEST_F(MockStreamTest, KeepAliveAndPipeliningAfterAStream) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  // A stream with a plain request pipelined behind it: the second answer
  // waits for the stream's last chunk, on the same connection.
  ASSERT_TRUE(c->send(stream_request({"x-mock-stream-tokens: 3", "x-mock-stream-interval-ms: 20"}) +
                      make_request("GET", "/health", "")));
  Stream s = read_stream(*c);
  ASSERT_EQ(s.end, ChunkRead::kLast);
  EXPECT_EQ(s.events.size(), 7u);
  HttpResponse r;
  ASSERT_TRUE(c->read_response(&r));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok");
  // And another stream after that.
  ASSERT_TRUE(c->send(stream_request({"x-mock-stream-tokens: 2"})));
  s = read_stream(*c);
  ASSERT_EQ(s.end, ChunkRead::kLast);
  EXPECT_EQ(s.events.size(), 6u);
  EXPECT_EQ(server_->stats().connections_accepted, 1u);
}

TEST_F(MockStreamTest, ConnectionCloseEndsTheConnectionAfterTheStream) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->send(stream_request({"x-mock-stream-tokens: 2", "connection: close"})));
  Stream s = read_stream(*c);
  ASSERT_EQ(s.end, ChunkRead::kLast);
  EXPECT_EQ(s.head.header("connection"), "close");
  ReadEnd end;
  c->read_until_close(2000, &end);
  EXPECT_EQ(end, ReadEnd::kEof);
}

TEST_F(MockStreamTest, StallAfterGoesSilentWithTheConnectionOpen) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->send(stream_request({"x-mock-stream-tokens: 5", "x-mock-stream-stall-after: 2",
                                      "x-mock-stream-interval-ms: 10"})));
  Stream s = read_stream(*c, 500);
  EXPECT_EQ(s.end, ChunkRead::kTimeout);  // neither more events nor a close
  ASSERT_EQ(s.events.size(), 3u);         // role, tok1, tok2
  EXPECT_EQ(piece(s.events[2]), " tok2");
  MockStats st = server_->stats();
  EXPECT_EQ(st.stalls, 1u);
  EXPECT_EQ(st.connections_closed, 0u);
  c.reset();
  EXPECT_TRUE(eventually([&] { return server_->stats().connections_closed == 1; }));
}

TEST_F(MockStreamTest, StallAfterBeyondTheTokensStallsBeforeTheFinish) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->send(stream_request({"x-mock-stream-tokens: 2", "x-mock-stream-stall-after: 9"})));
  Stream s = read_stream(*c, 300);
  EXPECT_EQ(s.end, ChunkRead::kTimeout);
  EXPECT_EQ(s.events.size(), 3u);  // role, tok1, tok2; no finish, no [DONE]
}

TEST_F(MockStreamTest, ResetAfterSendsTheTokensThenRst) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->send(stream_request({"x-mock-stream-tokens: 5", "x-mock-stream-reset-after: 3",
                                      "x-mock-stream-interval-ms: 10"})));
  Stream s = read_stream(*c, 2000);
  EXPECT_EQ(s.end, ChunkRead::kReset);
  ASSERT_EQ(s.events.size(), 4u);  // role, tok1..tok3
  EXPECT_EQ(piece(s.events[3]), " tok3");
  EXPECT_TRUE(eventually([&] { return server_->stats().resets == 1; }));

  // reset-after 0: the headers and the role event, then RST.
  c = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->send(stream_request({"x-mock-stream-reset-after: 0"})));
  s = read_stream(*c, 2000);
  EXPECT_EQ(s.head.status, 200);
  EXPECT_EQ(s.end, ChunkRead::kReset);
  EXPECT_EQ(s.events.size(), 1u);
}

TEST_F(MockStreamTest, ClientLeavingMidStreamFreesItAndOthersAreServed) {
  start();
  auto quitter = connect(), stayer = connect();
  ASSERT_NE(quitter, nullptr);
  ASSERT_NE(stayer, nullptr);
  ASSERT_TRUE(quitter->send(stream_request({"x-mock-stream-tokens: 1000",
                                            "x-mock-stream-interval-ms: 20"})));
  ASSERT_TRUE(stayer->send(stream_request({"x-mock-stream-tokens: 10",
                                           "x-mock-stream-interval-ms: 30"})));
  Stream q = read_stream(*quitter, 2000, 3);
  ASSERT_EQ(q.events.size(), 3u);
  quitter.reset();  // close_notify and close, mid-stream
  EXPECT_TRUE(eventually([&] { return server_->stats().streams_cancelled == 1; }));
  EXPECT_TRUE(eventually([&] { return server_->stats().connections_closed == 1; }));
  uint64_t tokens = server_->stats().stream_token_events;

  Stream s = read_stream(*stayer);
  EXPECT_EQ(s.end, ChunkRead::kLast);
  EXPECT_EQ(s.events.size(), 14u);
  // The cancelled stream wrote nothing more once it was noticed.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_LE(server_->stats().stream_token_events, tokens + 10);

  auto fresh = connect();
  ASSERT_NE(fresh, nullptr);
  ASSERT_TRUE(fresh->send(stream_request({"x-mock-stream-tokens: 1"})));
  EXPECT_EQ(read_stream(*fresh).end, ChunkRead::kLast);
}

TEST_F(MockStreamTest, AbruptCloseWithoutCloseNotifyIsNoticedToo) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->send(stream_request({"x-mock-stream-tokens: 1000", "x-mock-stream-interval-ms: 20"})));
  Stream s = read_stream(*c, 2000, 2);
  ASSERT_EQ(s.events.size(), 2u);
  ::shutdown(c->fd(), SHUT_RDWR);  // FIN without close_notify
  EXPECT_TRUE(eventually([&] { return server_->stats().streams_cancelled == 1; }));
}

TEST_F(MockStreamTest, StopWithStreamsInFlightIsPrompt) {
  start();
  auto a = connect(), b = connect();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(a->send(stream_request({"x-mock-stream-tokens: 1000", "x-mock-stream-interval-ms: 50"})));
  ASSERT_TRUE(b->send(stream_request({"x-mock-stream-stall-after: 0"})));
  EXPECT_EQ(read_stream(*a, 2000, 2).events.size(), 2u);
  EXPECT_EQ(read_stream(*b, 300).end, ChunkRead::kTimeout);
  auto t0 = Clock::now();
  server_->stop();
  EXPECT_LT(ms_between(t0, Clock::now()), 1000);
  MockStats st = server_->stats();
  EXPECT_EQ(st.connections_closed, 2u);
  EXPECT_EQ(st.streams_cancelled, 1u);  // the stalled one had already ended its stream
}

}  // namespace
}  // namespace barrage::mock
