// End-to-end tests of the mock server over real loopback TLS: answers,
// keep-alive and pipelining, every fault, limits, certificates, resumption
// and shutdown. Responses are validated with simdjson, a parser the mock
// does not use, so a JSON bug in the mock cannot hide behind itself.
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "mock_server.hpp"
#include "request_json.hpp"
#include "test_ca.hpp"
#include "test_client.hpp"

namespace barrage::mock {
namespace {

using testing::HttpResponse;
using testing::make_request;
using testing::ReadEnd;
using testing::TestClient;
using Clock = std::chrono::steady_clock;

int64_t ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

std::string chat_body(std::string_view user_text, std::string_view model = "gpt-test") {
  std::string b = "{\"model\":";
  append_json_string(b, model);
  b += ",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"user\",\"content\":";
  append_json_string(b, user_text);
  b += "}]}";
  return b;
}

std::string chat_request(std::string_view user_text, const std::vector<std::string>& headers = {}) {
  return make_request("POST", "/v1/chat/completions", chat_body(user_text), headers);
}

// Polls until pred() holds or ~2 s pass: server-side counters are updated
// on the worker thread, slightly after the client sees the effect.
template <class F>
bool eventually(F pred) {
  for (int i = 0; i < 200; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

class MockServerTest : public ::testing::Test {
 protected:
  void start(MockOptions opts = {}) {
    std::string err;
    server_ = MockServer::start(opts, &err);
    ASSERT_NE(server_, nullptr) << err;
    tls_.ca_pem = server_->ca_pem();
  }

  std::unique_ptr<TestClient> connect() {
    std::string err;
    auto c = TestClient::connect(server_->port(), server_->options().tls ? &tls_ : nullptr, &err);
    EXPECT_NE(c, nullptr) << err;
    return c;
  }

  HttpResponse roundtrip(TestClient& c, const std::string& request) {
    HttpResponse r;
    EXPECT_TRUE(c.send(request));
    EXPECT_TRUE(c.read_response(&r)) << "status line: " << r.status_line;
    return r;
  }

  HttpResponse roundtrip(const std::string& request) {
    auto c = connect();
    if (!c) return {};
    return roundtrip(*c, request);
  }

  std::unique_ptr<MockServer> server_;
  TestClient::Tls tls_;
  simdjson::dom::parser json_;
};

TEST_F(MockServerTest, CompletionEchoesTheRequest) {
  start();
  std::string text = "What is \"2+2\"?\nAnswer with a \\ backslash, \xC3\xA9 and \xF0\x9F\x98\x80.";
  std::string body = chat_body(text);
  HttpResponse r = roundtrip(make_request("POST", "/v1/chat/completions", body));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(r.header("x-request-id").rfind("req_", 0), 0u);

  simdjson::dom::element doc = json_.parse(r.body);
  EXPECT_EQ(std::string_view(doc["id"]).rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(std::string_view(doc["object"]), "chat.completion");
  EXPECT_NEAR(int64_t(doc["created"]), int64_t(std::time(nullptr)), 5);
  EXPECT_EQ(std::string_view(doc["model"]), "gpt-test");
  simdjson::dom::element choice = doc["choices"].at(0);
  EXPECT_EQ(int64_t(choice["index"]), 0);
  EXPECT_EQ(std::string_view(choice["message"]["role"]), "assistant");
  EXPECT_EQ(std::string_view(choice["finish_reason"]), "stop");
  std::string_view content = choice["message"]["content"];
  EXPECT_EQ(content, "mock answer to " + std::to_string(body.size()) + " bytes: " + text);

  uint64_t p = uint64_t(doc["usage"]["prompt_tokens"]);
  uint64_t c = uint64_t(doc["usage"]["completion_tokens"]);
  EXPECT_EQ(p, (body.size() + 3) / 4);
  EXPECT_EQ(c, count_words(content));
  EXPECT_EQ(uint64_t(doc["usage"]["total_tokens"]), p + c);
  EXPECT_EQ(server_->stats().status(200), 1u);
}

TEST_F(MockServerTest, EchoIsCutAt200CharactersAndModelDefaults) {
  start();
  std::string text;
  for (int i = 0; i < 300; ++i) text += "\xC3\xA9";  // 300 two-byte characters
  HttpResponse r = roundtrip(make_request("POST", "/v1/chat/completions",
                                          "{\"messages\":[{\"role\":\"user\",\"content\":\"" + text + "\"}]}"));
  ASSERT_EQ(r.status, 200);
  simdjson::dom::element doc = json_.parse(r.body);
  EXPECT_EQ(std::string_view(doc["model"]), "mock-1");
  std::string_view content = doc["choices"].at(0)["message"]["content"];
  std::string_view echoed = content.substr(content.find(": ") + 2);
  EXPECT_EQ(echoed, text.substr(0, 400));
}

TEST_F(MockServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  HttpResponse a = roundtrip(*c, chat_request("first"));
  HttpResponse b = roundtrip(*c, chat_request("second"));
  ASSERT_EQ(a.status, 200);
  ASSERT_EQ(b.status, 200);
  EXPECT_NE(a.body.find("first"), std::string::npos);
  EXPECT_NE(b.body.find("second"), std::string::npos);
  EXPECT_NE(a.header("x-request-id"), b.header("x-request-id"));
  MockStats s = server_->stats();
  EXPECT_EQ(s.connections_accepted, 1u);
  EXPECT_EQ(s.requests, 2u);
}

TEST_F(MockServerTest, PipelinedRequestsAreAnsweredInOrder) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  std::string all;
  for (int i = 0; i < 5; ++i) all += chat_request("pipelined #" + std::to_string(i));
  all += make_request("GET", "/health", "");
  ASSERT_TRUE(c->send(all));
  for (int i = 0; i < 5; ++i) {
    HttpResponse r;
    ASSERT_TRUE(c->read_response(&r));
    EXPECT_NE(r.body.find("pipelined #" + std::to_string(i) + "\""), std::string::npos) << r.body;
  }
  HttpResponse h;
  ASSERT_TRUE(c->read_response(&h));
  EXPECT_EQ(h.body, "ok");
}

TEST_F(MockServerTest, Status429CarriesRetryAfter) {
  MockOptions o;
  o.retry_after_s = 7;
  start(o);
  auto c = connect();
  ASSERT_NE(c, nullptr);
  HttpResponse r = roundtrip(*c, chat_request("x", {"x-mock-status: 429"}));
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.header("retry-after"), "7");
  EXPECT_FALSE(r.has_header("retry-after-ms"));
  simdjson::dom::element doc = json_.parse(r.body);
  EXPECT_EQ(std::string_view(doc["error"]["code"]), "rate_limit_exceeded");
  EXPECT_EQ(std::string_view(doc["error"]["type"]), "requests");
  EXPECT_FALSE(std::string_view(doc["error"]["message"]).empty());

  r = roundtrip(*c, chat_request("x", {"x-mock-status: 429",
                                       "x-mock-retry-after: Wed, 21 Oct 2015 07:28:00 GMT",
                                       "x-mock-retry-after-ms: 1500"}));
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.header("retry-after"), "Wed, 21 Oct 2015 07:28:00 GMT");
  EXPECT_EQ(r.header("retry-after-ms"), "1500");

  r = roundtrip(*c, chat_request("x", {"x-mock-status: 503"}));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.header("retry-after"), "7");
  EXPECT_EQ(std::string_view(json_.parse(r.body)["error"]["type"]), "server_error");

  r = roundtrip(*c, chat_request("x", {"x-mock-status: 500"}));
  EXPECT_EQ(r.status, 500);
  EXPECT_FALSE(r.has_header("retry-after"));
  // Errors keep the connection usable.
  EXPECT_EQ(roundtrip(*c, chat_request("after errors")).status, 200);
  MockStats s = server_->stats();
  EXPECT_EQ(s.status(429), 2u);
  EXPECT_EQ(s.status(503), 1u);
  EXPECT_EQ(s.status(500), 1u);
  EXPECT_EQ(s.status(200), 1u);
}

TEST_F(MockServerTest, FailTimesFailsOnlyTheFirstRequestsPerKey) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  auto req = [&](const char* key, std::vector<std::string> extra = {}) {
    extra.push_back(std::string("x-mock-fail-key: ") + key);
    extra.push_back("x-mock-fail-times: 2");
    return roundtrip(*c, chat_request("x", extra));
  };
  // Default: 429 with Retry-After for the first two of key "a", then 200.
  HttpResponse r = req("a");
  EXPECT_EQ(r.status, 429);
  EXPECT_TRUE(r.has_header("retry-after"));
  EXPECT_EQ(req("a").status, 429);
  EXPECT_EQ(req("a").status, 200);
  EXPECT_EQ(req("a").status, 200);
  // Another key counts on its own, and x-mock-status picks the failure.
  EXPECT_EQ(req("b", {"x-mock-status: 503"}).status, 503);
  EXPECT_EQ(req("b", {"x-mock-status: 503"}).status, 503);
  EXPECT_EQ(req("b", {"x-mock-status: 503"}).status, 200);
  // A fault instead of a status: the first request is reset, the next answered.
  const std::vector<std::string> reset = {"x-mock-fail-key: c", "x-mock-fail-times: 1",
                                          "x-mock-fault: reset-before"};
  auto c2 = connect();
  ASSERT_NE(c2, nullptr);
  ASSERT_TRUE(c2->send(chat_request("x", reset)));
  ReadEnd end;
  EXPECT_TRUE(c2->read_until_close(3000, &end).empty());
  auto c3 = connect();
  ASSERT_NE(c3, nullptr);
  EXPECT_EQ(roundtrip(*c3, chat_request("x", reset)).status, 200);
}

TEST_F(MockServerTest, LatencyHeaderDelaysTheAnswer) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  auto t0 = Clock::now();
  HttpResponse r = roundtrip(*c, chat_request("slow", {"x-mock-latency-ms: 250"}));
  EXPECT_EQ(r.status, 200);
  EXPECT_GE(ms_since(t0), 250);
  t0 = Clock::now();
  r = roundtrip(*c, chat_request("fast"));
  EXPECT_LT(ms_since(t0), 200);
}

TEST_F(MockServerTest, GlobalLatencyAppliesToApiOnly) {
  MockOptions o;
  o.latency_ms = 150;
  o.latency_jitter_ms = 50;
  start(o);
  auto c = connect();
  ASSERT_NE(c, nullptr);
  auto t0 = Clock::now();
  EXPECT_EQ(roundtrip(*c, chat_request("x")).status, 200);
  int64_t took = ms_since(t0);
  EXPECT_GE(took, 150);
  t0 = Clock::now();
  EXPECT_EQ(roundtrip(*c, make_request("GET", "/health", "")).status, 200);
  EXPECT_LT(ms_since(t0), 100);
}

TEST_F(MockServerTest, ResetBeforeSendsNoBytes) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->send(chat_request("x", {"x-mock-fault: reset-before"})));
  ReadEnd end;
  std::string got = c->read_until_close(3000, &end);
  EXPECT_TRUE(got.empty()) << got;
  EXPECT_TRUE(end == ReadEnd::kReset || end == ReadEnd::kEof) << static_cast<int>(end);
  EXPECT_TRUE(eventually([&] { return server_->stats().resets == 1; }));
}

TEST_F(MockServerTest, ResetBeforeHonoursLatency) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  auto t0 = Clock::now();
  ASSERT_TRUE(c->send(chat_request("x", {"x-mock-fault: reset-before", "x-mock-latency-ms: 150"})));
  ReadEnd end;
  EXPECT_TRUE(c->read_until_close(3000, &end).empty());
  EXPECT_GE(ms_since(t0), 150);
}

TEST_F(MockServerTest, ResetDuringSendsPartOfTheAnswerThenResets) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->send(chat_request("a reasonably long question to make the body long enough",
                                   {"x-mock-fault: reset-during"})));
  ReadEnd end;
  std::string got = c->read_until_close(3000, &end);
  EXPECT_EQ(end, ReadEnd::kReset);
  ASSERT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
  size_t head_end = got.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos);
  size_t cl_pos = got.find("content-length: ");
  ASSERT_NE(cl_pos, std::string::npos);
  size_t cl = std::stoul(got.substr(cl_pos + 16));
  size_t body = got.size() - head_end - 4;
  EXPECT_GT(body, 0u);
  EXPECT_LT(body, cl);
  EXPECT_TRUE(eventually([&] { return server_->stats().resets == 1; }));
}

TEST_F(MockServerTest, StallNeverAnswers) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->send(chat_request("x", {"x-mock-fault: stall"})));
  char buf[64];
  EXPECT_EQ(c->read_some(buf, sizeof buf, 300), -1);  // timeout, no byte
  EXPECT_TRUE(eventually([&] { return server_->stats().stalls == 1; }));
  // More input is swallowed too; the client closing ends the connection.
  ASSERT_TRUE(c->send(chat_request("ignored")));
  EXPECT_EQ(c->read_some(buf, sizeof buf, 100), -1);
  c.reset();
  EXPECT_TRUE(eventually([&] { return server_->stats().connections_closed == 1; }));
}

TEST_F(MockServerTest, TruncateSendsLessThanContentLength) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->send(chat_request("truncate me", {"x-mock-fault: truncate"})));
  HttpResponse r;
  EXPECT_FALSE(c->read_response(&r, 3000));
  EXPECT_EQ(r.status, 200);
  size_t cl = std::stoul(r.header("content-length"));
  EXPECT_GT(r.body.size(), 0u);
  EXPECT_LT(r.body.size(), cl);
}

TEST_F(MockServerTest, MalformedStatusLine) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->send(chat_request("x", {"x-mock-fault: malformed"})));
  ReadEnd end;
  std::string got = c->read_until_close(3000, &end);
  EXPECT_EQ(got.rfind("HTTP/1.1 OK\r\n", 0), 0u) << got;
  EXPECT_EQ(end, ReadEnd::kEof);
}

TEST_F(MockServerTest, DripSendsOneByteAtATime) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  auto t0 = Clock::now();
  ASSERT_TRUE(c->send(make_request("GET", "/health", "", {"x-mock-fault: drip", "x-mock-drip-ms: 2"})));
  char first[16];
  EXPECT_EQ(c->read_some(first, sizeof first, 2000), 1);  // one TLS record per byte
  HttpResponse r;
  ASSERT_TRUE(c->read_response(&r, 5000));
  EXPECT_EQ(r.body, "ok");
  EXPECT_GE(ms_since(t0), 100);  // ~90 bytes at >= 2 ms each
  // Dripping ends with the response: the next one arrives at once.
  t0 = Clock::now();
  EXPECT_EQ(roundtrip(*c, make_request("GET", "/health", "")).status, 200);
  EXPECT_LT(ms_since(t0), 100);
}

TEST_F(MockServerTest, CloseFaultAnswersThenCloses) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  HttpResponse r = roundtrip(*c, chat_request("bye", {"x-mock-fault: close"}));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("connection"), "close");
  ReadEnd end;
  EXPECT_TRUE(c->read_until_close(2000, &end).empty());
  EXPECT_EQ(end, ReadEnd::kEof);
}

TEST_F(MockServerTest, HugeBodyIsValidJsonOfTheRequestedSize) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  HttpResponse r;
  ASSERT_TRUE(c->send(chat_request("x", {"x-mock-fault: huge", "x-mock-huge-bytes: 3000000"})));
  ASSERT_TRUE(c->read_response(&r, 10000));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.size(), 3000000u);
  simdjson::dom::element doc = json_.parse(r.body);
  std::string_view content = doc["choices"].at(0)["message"]["content"];
  EXPECT_EQ(uint64_t(doc["usage"]["completion_tokens"]), count_words(content));
  // The connection stays usable after a huge answer.
  EXPECT_EQ(roundtrip(*c, chat_request("after huge")).status, 200);
}

TEST_F(MockServerTest, ChunkedRequestBodyIsAccepted) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  std::string body = chat_body("sent in chunks");
  std::string head =
      "POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\ntransfer-encoding: chunked\r\n\r\n";
  ASSERT_TRUE(c->send(head));
  size_t half = body.size() / 2;
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", half);
  ASSERT_TRUE(c->send(size + body.substr(0, half) + "\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::snprintf(size, sizeof size, "%zx;ext=1\r\n", body.size() - half);
  ASSERT_TRUE(c->send(size + body.substr(half) + "\r\n0\r\n\r\n"));
  HttpResponse r;
  ASSERT_TRUE(c->read_response(&r));
  ASSERT_EQ(r.status, 200) << r.body;
  simdjson::dom::element doc = json_.parse(r.body);
  EXPECT_EQ(std::string_view(doc["choices"].at(0)["message"]["content"]),
            "mock answer to " + std::to_string(body.size()) + " bytes: sent in chunks");
  EXPECT_EQ(uint64_t(doc["usage"]["prompt_tokens"]), (body.size() + 3) / 4);
}

TEST_F(MockServerTest, ExpectContinueGetsInterimResponse) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  std::string body = chat_body("continue");
  ASSERT_TRUE(c->send("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\n"
                      "content-length: " + std::to_string(body.size()) + "\r\n\r\n"));
  char buf[64];
  int n = c->read_some(buf, sizeof buf, 2000);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(c->send(body));
  HttpResponse r;
  ASSERT_TRUE(c->read_response(&r));
  EXPECT_EQ(r.status, 200);
}

TEST_F(MockServerTest, RoutesHealthNotFoundAndBadMethod) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  HttpResponse r = roundtrip(*c, make_request("GET", "/health", ""));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok");
  r = roundtrip(*c, make_request("POST", "/v1/nope", "{}"));
  EXPECT_EQ(r.status, 404);
  simdjson::dom::element doc = json_.parse(r.body);
  EXPECT_EQ(std::string_view(doc["error"]["type"]), "invalid_request_error");
  EXPECT_EQ(std::string_view(doc["error"]["code"]), "unknown_url");
  EXPECT_TRUE(doc["error"]["param"].is_null());
  r = roundtrip(*c, make_request("GET", "/v1/chat/completions", ""));
  EXPECT_EQ(r.status, 405);
  r = roundtrip(*c, make_request("POST", "/v1/chat/completions", "{not json"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(std::string_view(json_.parse(r.body)["error"]["type"]), "invalid_request_error");
  r = roundtrip(*c, chat_request("x", {"x-mock-fault: explode"}));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(roundtrip(*c, chat_request("still fine")).status, 200);
}

TEST_F(MockServerTest, OversizedRequestsAreRefused) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->send("POST /v1/chat/completions HTTP/1.1\r\ncontent-length: 16777217\r\n\r\n"));
  HttpResponse r;
  ASSERT_TRUE(c->read_response(&r));
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.header("connection"), "close");
  ReadEnd end;
  c->read_until_close(2000, &end);
  EXPECT_EQ(end, ReadEnd::kEof);

  c = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->send("GET /health HTTP/1.1\r\nx-big: " + std::string(70000, 'a') + "\r\n\r\n"));
  ASSERT_TRUE(c->read_response(&r));
  EXPECT_EQ(r.status, 400);
}

TEST_F(MockServerTest, StreamingAnswersAsServerSentEvents) {
  start();
  HttpResponse r = roundtrip(make_request(
      "POST", "/v1/chat/completions",
      R"({"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"one  two three"}]})"));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "text/event-stream");
  EXPECT_EQ(r.header("transfer-encoding"), "chunked");
  std::string content;
  bool done = false, usage = false;
  size_t pos = 0;
  while (pos < r.body.size()) {
    size_t end = r.body.find("\n\n", pos);
    ASSERT_NE(end, std::string::npos);
    std::string event = r.body.substr(pos, end - pos);
    pos = end + 2;
    ASSERT_EQ(event.rfind("data: ", 0), 0u);
    std::string data = event.substr(6);
    if (data == "[DONE]") {
      done = true;
      continue;
    }
    simdjson::dom::element doc = json_.parse(data);
    EXPECT_EQ(std::string_view(doc["object"]), "chat.completion.chunk");
    simdjson::dom::array choices = doc["choices"];
    if (choices.size() == 0) {
      usage = uint64_t(doc["usage"]["completion_tokens"]) > 0;
      continue;
    }
    std::string_view piece;
    if (choices.at(0)["delta"]["content"].get(piece) == simdjson::SUCCESS) content += piece;
  }
  EXPECT_TRUE(done);
  EXPECT_TRUE(usage);
  EXPECT_EQ(content.substr(content.find(": ") + 2), "one  two three");
}

TEST_F(MockServerTest, CompletionsAndEmbeddingsShapes) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  HttpResponse r = roundtrip(*c, make_request("POST", "/v1/completions", R"({"model":"m","prompt":"say hi"})"));
  ASSERT_EQ(r.status, 200);
  simdjson::dom::element doc = json_.parse(r.body);
  EXPECT_EQ(std::string_view(doc["object"]), "text_completion");
  std::string_view text = doc["choices"].at(0)["text"];
  EXPECT_NE(text.find("say hi"), std::string_view::npos);

  r = roundtrip(*c, make_request("POST", "/v1/embeddings", R"({"model":"e","input":["a","b","a"]})"));
  ASSERT_EQ(r.status, 200);
  doc = json_.parse(r.body);
  EXPECT_EQ(std::string_view(doc["object"]), "list");
  simdjson::dom::array data = doc["data"];
  ASSERT_EQ(data.size(), 3u);
  simdjson::dom::array v0 = data.at(0)["embedding"], v1 = data.at(1)["embedding"], v2 = data.at(2)["embedding"];
  EXPECT_EQ(v0.size(), 8u);
  EXPECT_EQ(double(v0.at(0)), double(v2.at(0)));  // same input, same vector
  EXPECT_NE(double(v0.at(0)), double(v1.at(0)));
  EXPECT_GT(uint64_t(doc["usage"]["prompt_tokens"]), 0u);
}

TEST_F(MockServerTest, LimitRpsAnswers429BeyondTheLimit) {
  MockOptions o;
  o.limit_rps = 5;
  start(o);
  auto c = connect();
  ASSERT_NE(c, nullptr);
  int ok = 0, limited = 0;
  for (int i = 0; i < 12; ++i) {
    HttpResponse r = roundtrip(*c, chat_request(std::to_string(i) + "n"));
    if (r.status == 200) ++ok;
    if (r.status == 429) {
      ++limited;
      EXPECT_EQ(r.header("retry-after"), "1");
    }
  }
  EXPECT_EQ(ok, 5);
  EXPECT_EQ(limited, 7);
  EXPECT_EQ(server_->stats().rate_limited, 7u);
  // /health is not rate limited.
  EXPECT_EQ(roundtrip(*c, make_request("GET", "/health", "")).status, 200);
  // The window slides: a second later requests pass again.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(roundtrip(*c, chat_request("later")).status, 200);
}

TEST_F(MockServerTest, GlobalFaultRatesAreSeededAndDeterministic) {
  auto run = [&](uint64_t seed) {
    MockOptions o;
    o.rate_429 = 0.3;
    o.rate_500 = 0.2;
    o.seed = seed;
    start(o);
    auto c = connect();
    std::string statuses;
    for (int i = 0; i < 100 && c; ++i) {
      int s = roundtrip(*c, chat_request("x")).status;
      statuses += s == 200 ? '.' : s == 429 ? 'R' : s == 500 ? 'E' : '?';
    }
    server_.reset();
    return statuses;
  };
  std::string a = run(42), b = run(42), d = run(43);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, d);
  auto count = [](const std::string& s, char ch) { return std::count(s.begin(), s.end(), ch); };
  EXPECT_EQ(count(a, '?'), 0);
  EXPECT_GT(count(a, 'R'), 10);
  EXPECT_LT(count(a, 'R'), 50);
  EXPECT_GT(count(a, 'E'), 5);
  EXPECT_LT(count(a, 'E'), 40);
}

TEST_F(MockServerTest, HeadersOverrideGlobalRates) {
  MockOptions o;
  o.rate_500 = 1.0;
  start(o);
  auto c = connect();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(roundtrip(*c, chat_request("x")).status, 500);
  EXPECT_EQ(roundtrip(*c, chat_request("x", {"x-mock-status: 200"})).status, 200);
  EXPECT_EQ(roundtrip(*c, make_request("GET", "/health", "")).status, 200);
}

TEST_F(MockServerTest, CertificateVerifiesForLocalhostOnly) {
  std::string err;
  TestCa ca = TestCa::create(&err);
  ASSERT_TRUE(ca.valid()) << err;
  CertBundle good = ca.issue({"DNS:localhost", "IP:127.0.0.1", "IP:::1"}, &err);
  ASSERT_TRUE(good.ok()) << err;
  CertBundle wrong = ca.issue({"DNS:wrong.example"}, &err);
  ASSERT_TRUE(wrong.ok()) << err;
  CertBundle expired = ca.issue({"DNS:localhost"}, &err, -7200, -3600);
  ASSERT_TRUE(expired.ok()) << err;

  // The leaf's SANs, checked directly.
  BIO* bio = BIO_new_mem_buf(good.cert_pem.data(), static_cast<int>(good.cert_pem.size()));
  X509* leaf = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ASSERT_NE(leaf, nullptr);
  EXPECT_EQ(X509_check_host(leaf, "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(leaf, "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(leaf, "::1", 0), 1);
  EXPECT_NE(X509_check_host(leaf, "example.com", 0, 0, nullptr), 1);
  X509_free(leaf);

  auto serve = [&](const CertBundle& b) {
    MockOptions o;
    o.cert_pem = b.cert_pem;
    o.key_pem = b.key_pem;
    std::string e;
    auto s = MockServer::start(o, &e);
    EXPECT_NE(s, nullptr) << e;
    return s;
  };
  TestClient::Tls tls;
  tls.ca_pem = ca.ca_pem();

  auto s = serve(good);
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->ca_pem().empty());
  auto c = TestClient::connect(s->port(), &tls, &err);
  ASSERT_NE(c, nullptr) << err;
  HttpResponse r;
  ASSERT_TRUE(c->send(make_request("GET", "/health", "")));
  ASSERT_TRUE(c->read_response(&r));
  EXPECT_EQ(r.status, 200);
  // A client trusting some other CA must refuse the same server.
  TestClient::Tls other;
  other.ca_pem = TestCa::create(&err).ca_pem();
  EXPECT_EQ(TestClient::connect(s->port(), &other, &err), nullptr);
  EXPECT_NE(err.find("unable to get local issuer certificate"), std::string::npos) << err;

  s = serve(wrong);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(TestClient::connect(s->port(), &tls, &err), nullptr);
  EXPECT_NE(err.find("hostname mismatch"), std::string::npos) << err;
  tls.host = "wrong.example";
  EXPECT_NE(TestClient::connect(s->port(), &tls, &err), nullptr) << err;
  tls.host = "localhost";

  s = serve(expired);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(TestClient::connect(s->port(), &tls, &err), nullptr);
  EXPECT_NE(err.find("expired"), std::string::npos) << err;
}

TEST_F(MockServerTest, TlsSessionResumptionIsCounted) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  // TLS 1.3 tickets arrive after the handshake: read a response first.
  EXPECT_EQ(roundtrip(*c, make_request("GET", "/health", "")).status, 200);
  SSL_SESSION* session = c->get1_session();
  ASSERT_NE(session, nullptr);
  c.reset();
  tls_.session = session;
  auto again = connect();
  tls_.session = nullptr;
  ASSERT_NE(again, nullptr);
  EXPECT_TRUE(SSL_session_reused(again->ssl()));
  SSL_SESSION_free(session);
  EXPECT_EQ(roundtrip(*again, make_request("GET", "/health", "")).status, 200);
  MockStats s = server_->stats();
  EXPECT_EQ(s.tls_handshakes, 2u);
  EXPECT_EQ(s.tls_resumed, 1u);
}

TEST_F(MockServerTest, PlainHttpMode) {
  MockOptions o;
  o.tls = false;
  start(o);
  EXPECT_TRUE(server_->ca_pem().empty());
  auto c = connect();
  ASSERT_NE(c, nullptr);
  HttpResponse r = roundtrip(*c, chat_request("plain"));
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("plain"), std::string::npos);
  EXPECT_EQ(server_->stats().tls_handshakes, 0u);
}

TEST_F(MockServerTest, ManyConnectionsAcrossWorkers) {
  MockOptions o;
  o.threads = 2;
  o.latency_ms = 20;
  start(o);
  constexpr int kConns = 200;
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < kConns; ++i) {
    clients.push_back(connect());
    ASSERT_NE(clients.back(), nullptr);
  }
  for (int i = 0; i < kConns; ++i) ASSERT_TRUE(clients[i]->send(chat_request("client " + std::to_string(i))));
  for (int i = 0; i < kConns; ++i) {
    HttpResponse r;
    ASSERT_TRUE(clients[i]->read_response(&r));
    ASSERT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("client " + std::to_string(i) + "\""), std::string::npos);
  }
  MockStats s = server_->stats();
  EXPECT_EQ(s.connections_accepted, static_cast<uint64_t>(kConns));
  EXPECT_EQ(s.status(200), static_cast<uint64_t>(kConns));
}

TEST_F(MockServerTest, IdleTimeoutAndKeepaliveRequests) {
  MockOptions o;
  o.idle_timeout_ms = 100;
  o.keepalive_requests = 2;
  start(o);
  auto c = connect();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(roundtrip(*c, make_request("GET", "/health", "")).status, 200);
  auto t0 = Clock::now();
  ReadEnd end;
  c->read_until_close(2000, &end);
  EXPECT_EQ(end, ReadEnd::kEof);
  EXPECT_GE(ms_since(t0), 50);  // loose: the idle clock starts on the server

  c = connect();
  ASSERT_NE(c, nullptr);
  EXPECT_FALSE(roundtrip(*c, make_request("GET", "/health", "")).has_header("connection"));
  EXPECT_EQ(roundtrip(*c, make_request("GET", "/health", "")).header("connection"), "close");
}

TEST_F(MockServerTest, StopIsPromptWithConnectionsOpen) {
  start();
  std::vector<std::unique_ptr<TestClient>> clients;
  for (int i = 0; i < 10; ++i) {
    clients.push_back(connect());
    ASSERT_NE(clients.back(), nullptr);
  }
  ASSERT_TRUE(clients[0]->send(chat_request("x", {"x-mock-fault: stall"})));
  ASSERT_TRUE(clients[1]->send(chat_request("x", {"x-mock-latency-ms: 30000"})));
  ASSERT_TRUE(clients[2]->send(chat_request("x", {"x-mock-fault: drip", "x-mock-drip-ms: 1000"})));
  ASSERT_TRUE(clients[3]->send(chat_request("x", {"x-mock-fault: huge"})));
  ASSERT_TRUE(clients[4]->send("POST /v1/chat/completions HTTP/1.1\r\ncontent-length: 100\r\n\r\n{"));
  // And one that never even starts its TLS handshake.
  std::string err;
  auto raw = TestClient::connect(server_->port(), nullptr, &err);
  ASSERT_NE(raw, nullptr) << err;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));

  auto t0 = Clock::now();
  server_->stop();
  EXPECT_LT(ms_since(t0), 1000);
  server_->stop();  // idempotent
  ReadEnd end;
  clients[1]->read_until_close(2000, &end);
  EXPECT_NE(end, ReadEnd::kTimeout);
  raw->read_until_close(2000, &end);
  EXPECT_NE(end, ReadEnd::kTimeout);
  MockStats s = server_->stats();
  EXPECT_EQ(s.connections_accepted, 11u);
  EXPECT_EQ(s.connections_closed, 11u);
  // Nobody listens any more.
  EXPECT_EQ(TestClient::connect(server_->port(), nullptr, &err), nullptr);
}

TEST_F(MockServerTest, ListensOnIpv6Loopback) {
  MockOptions o;
  o.host = "::1";
  std::string err;
  server_ = MockServer::start(o, &err);
  if (server_ == nullptr) GTEST_SKIP() << "no IPv6 loopback here: " << err;
  tls_.ca_pem = server_->ca_pem();
  auto c = TestClient::connect(server_->port(), &tls_, &err, 5000, true);
  ASSERT_NE(c, nullptr) << err;
  HttpResponse r;
  ASSERT_TRUE(c->send(make_request("GET", "/health", "")));
  ASSERT_TRUE(c->read_response(&r));
  EXPECT_EQ(r.status, 200);
}

TEST_F(MockServerTest, RequestSentOneByteAtATime) {
  start();
  auto c = connect();
  ASSERT_NE(c, nullptr);
  std::string req = chat_request("slowly");
  for (char ch : req) ASSERT_TRUE(c->send(std::string_view(&ch, 1)));  // one TLS record each
  HttpResponse r;
  ASSERT_TRUE(c->read_response(&r));
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("slowly"), std::string::npos);
}

TEST_F(MockServerTest, HalfClosedClientStillGetsItsAnswers) {
  MockOptions o;
  o.tls = false;
  start(o);
  auto c = connect();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->send(chat_request("one", {"x-mock-latency-ms: 50"}) + chat_request("two")));
  ::shutdown(c->fd(), SHUT_WR);
  HttpResponse a, b;
  ASSERT_TRUE(c->read_response(&a));
  ASSERT_TRUE(c->read_response(&b));
  EXPECT_NE(a.body.find("one"), std::string::npos);
  EXPECT_NE(b.body.find("two"), std::string::npos);
  ReadEnd end;
  c->read_until_close(2000, &end);
  EXPECT_EQ(end, ReadEnd::kEof);
}

TEST_F(MockServerTest, Http10ClosesUnlessKeepAlive) {
  MockOptions o;
  o.tls = false;
  start(o);
  auto c = connect();
  ASSERT_NE(c, nullptr);
  HttpResponse r = roundtrip(*c, "GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_EQ(r.header("connection"), "keep-alive");
  r = roundtrip(*c, "GET /health HTTP/1.0\r\n\r\n");
  EXPECT_EQ(r.header("connection"), "close");
  ReadEnd end;
  c->read_until_close(2000, &end);
  EXPECT_EQ(end, ReadEnd::kEof);
}

TEST_F(MockServerTest, GarbageInputDoesNotHurtOtherClients) {
  MockOptions o;
  o.tls = false;
  start(o);
  uint64_t x = 12345;
  for (int round = 0; round < 20; ++round) {
    auto bad = connect();
    ASSERT_NE(bad, nullptr);
    std::string junk;
    for (int i = 0; i < 3000; ++i) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      junk.push_back(static_cast<char>(x >> 56));
      if (i % 97 == 0) junk += "\r\n";
    }
    // Odd rounds end the junk with a blank line, so the parser must judge
    // it; even rounds leave it incomplete and half-close instead.
    if (round % 2 == 1) junk += "\r\n\r\n";
    bad->send(junk, 1000);
    ::shutdown(bad->fd(), SHUT_WR);
    ReadEnd end;
    std::string got = bad->read_until_close(2000, &end);
    EXPECT_NE(end, ReadEnd::kTimeout);
    if (round % 2 == 1) {
      EXPECT_TRUE(got.rfind("HTTP/1.1 400", 0) == 0 || got.rfind("HTTP/1.1 505", 0) == 0)
          << got.substr(0, 80);
    } else {
      EXPECT_TRUE(got.empty()) << got.substr(0, 80);
    }
  }
  EXPECT_EQ(roundtrip(chat_request("still serving")).status, 200);
}

TEST(MockServerOptions, RejectsBadOptions) {
  std::string err;
  MockOptions o;
  o.rate_429 = 0.7;
  o.rate_500 = 0.7;
  EXPECT_EQ(MockServer::start(o, &err), nullptr);
  EXPECT_NE(err.find("more than 1"), std::string::npos);
  o = MockOptions{};
  o.threads = 0;
  EXPECT_EQ(MockServer::start(o, &err), nullptr);
  o = MockOptions{};
  o.cert_pem = "not a pem";
  o.key_pem = "nope";
  EXPECT_EQ(MockServer::start(o, &err), nullptr);
  EXPECT_NE(err.find("certificate"), std::string::npos) << err;
}

}  // namespace
}  // namespace barrage::mock
