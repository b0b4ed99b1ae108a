// Streamed answers (BRG_REQ_STREAM) through the C ABI over real TLS against
// the mock endpoint, which streams OpenAI chunks at a controlled pace:
// partial results in order, the final result's timing and usage, the
// first-token and idle deadlines, cancellation mid-stream. Both backends.
#include <simdjson.h>

#include <thread>

#include "capi_harness.hpp"

namespace barrage::testing {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

const std::string kStreamBody =
    R"({"model":"mock-1","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello"}]})";

struct Stream {
  std::vector<ResultPtr> partials;
  ResultPtr final;
};

class StreamMock : public ::testing::TestWithParam<int> {
 protected:
  int backend() const { return GetParam(); }

  static uint64_t submit(brg_engine* e, const std::string& url, const Headers& headers,
                         int64_t first_token_ms = 0, int64_t idle_ms = 0, const std::string& body = kStreamBody,
                         uint32_t flags = 0) {
    std::vector<brg_header> hs;
    for (auto& [n, v] : headers) hs.push_back({n.c_str(), v.c_str()});
    brg_request r{};
    r.size = sizeof r;
    r.flags = BRG_REQ_STREAM | flags;
    r.url = url.c_str();
    r.headers = hs.data();
    r.n_headers = uint32_t(hs.size());
    r.body = body.data();
    r.body_len = body.size();
    r.max_retries = -1;
    r.first_token_timeout_ms = first_token_ms;
    r.stream_idle_timeout_ms = idle_ms;
    uint64_t id = 0;
    EXPECT_EQ(brg_submit(e, &r, &id), 0) << brg_last_error();
    return id;
  }

  // Polls until `count` final results arrived; on_partial runs for each partial.
  template <class F>
  static std::map<uint64_t, Stream> collect(brg_engine* e, size_t count, F&& on_partial,
                                            std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    std::map<uint64_t, Stream> out;
    size_t finals = 0;
    auto until = std::chrono::steady_clock::now() + limit;
    while (finals < count && std::chrono::steady_clock::now() < until) {
      EXPECT_GE(brg_poll(e, 20), 0);
      brg_result* buf[64];
      size_t n;
      while ((n = brg_results(e, buf, 64)) > 0) {
        for (size_t i = 0; i < n; ++i) {
          Stream& s = out[buf[i]->id];
          EXPECT_FALSE(s.final) << "result after the final one for id " << buf[i]->id;
          if (buf[i]->flags & BRG_RES_PARTIAL) {
            s.partials.emplace_back(buf[i]);
            on_partial(*buf[i]);
          } else {
            s.final.reset(buf[i]);
            ++finals;
          }
        }
      }
    }
    EXPECT_EQ(finals, count) << "final results missing after " << limit.count() << " ms";
    return out;
  }
  static std::map<uint64_t, Stream> collect(brg_engine* e, size_t count) {
    return collect(e, count, [](const brg_result&) {});
  }
};

std::string body_of(const brg_result& r) { return std::string(r.body, r.body_len); }

// The concatenated delta contents of a stream's partial results.
std::string content_of(const Stream& s) {
  simdjson::dom::parser p;
  std::string text;
  for (const auto& r : s.partials) {
    simdjson::dom::element doc;
    EXPECT_EQ(p.parse(body_of(*r)).get(doc), simdjson::SUCCESS) << body_of(*r);
    simdjson::dom::array choices;
    if (doc["choices"].get_array().get(choices) != simdjson::SUCCESS) continue;
    for (auto c : choices) {
      std::string_view piece;
      if (c["delta"]["content"].get_string().get(piece) == simdjson::SUCCESS) text += piece;
    }
  }
  return text;
}

TEST_P(StreamMock, EveryEventIsAPartialResultInOrderThenTheWholeStream) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path(), {{BRG_OPT_MAX_INFLIGHT, 10}});
  std::vector<uint64_t> ids;
  for (int i = 0; i < 30; ++i) ids.push_back(submit(e.get(), m.url(), {}));
  auto streams = collect(e.get(), ids.size());
  for (uint64_t id : ids) {
    Stream& s = streams[id];
    ASSERT_TRUE(s.final);
    const brg_result& f = *s.final;
    ASSERT_EQ(f.status, BRG_OK) << f.error;
    EXPECT_EQ(f.http_status, 200);
    ASSERT_GE(s.partials.size(), 3u);  // role, at least one token, usage
    EXPECT_EQ(f.events, s.partials.size());
    // The final body is the raw stream; each partial is one of its data lines, in order.
    std::string raw = body_of(f);
    size_t pos = 0;
    for (size_t i = 0; i < s.partials.size(); ++i) {
      const brg_result& p = *s.partials[i];
      EXPECT_EQ(p.events, i + 1);
      EXPECT_EQ(p.id, id);
      EXPECT_EQ(p.status, BRG_OK);
      EXPECT_EQ(p.http_status, 200);
      size_t at = raw.find("data: " + body_of(p) + "\n", pos);
      ASSERT_NE(at, std::string::npos) << "event " << i << " not found in order: " << body_of(p);
      pos = at + 1;
      if (i > 0) EXPECT_GE(p.total_us, s.partials[i - 1]->total_us);
    }
    EXPECT_NE(raw.find("data: [DONE]"), std::string::npos);
    EXPECT_NE(content_of(s), "");
    // Usage came from the stream's last chunk (include_usage).
    EXPECT_GT(f.prompt_tokens, 0);
    EXPECT_GT(f.completion_tokens, 0);
    EXPECT_GE(f.ttft_us, f.ttfb_us);
    EXPECT_LE(f.ttft_us, f.total_us);
  }
  EXPECT_EQ(m.server->stats().requests, ids.size());
}

// BRG_REQ_HEADERS on a stream: the head arrives with the first event (as a
// response object has its headers before its body), not again with every
// event, and once more with the final result.
TEST_P(StreamMock, TheFirstPartialAndTheFinalResultCarryTheHead) {
  MockEndpoint m = MockEndpoint::start();
  auto e = make_engine(backend(), [&](brg_config* c) { brg_config_set_str(c, BRG_OPT_CA_FILE, m.ca->path().c_str()); });
  uint64_t id = submit(e.get(), m.url(), {{"x-mock-stream-tokens", "4"}}, 0, 0, kStreamBody, BRG_REQ_HEADERS);
  auto streams = collect(e.get(), 1);
  const Stream& s = streams[id];
  ASSERT_TRUE(s.final);
  ASSERT_GE(s.partials.size(), 2u);
  const brg_result& first = *s.partials.front();
  const std::string head(first.headers, first.headers_len);
  EXPECT_NE(head.find("content-type: text/event-stream"), std::string::npos) << head;
  EXPECT_NE(std::string(first.request_id), "");
  EXPECT_NE(head.find(std::string("x-request-id: ") + first.request_id + "\n"), std::string::npos) << head;
  EXPECT_EQ(first.retry_after_ms, -1);
  for (size_t i = 1; i < s.partials.size(); ++i) {
    EXPECT_STREQ(s.partials[i]->headers, "") << "partial " << i;
    EXPECT_EQ(s.partials[i]->headers_len, 0u);
  }
  EXPECT_EQ(std::string(s.final->headers, s.final->headers_len), head);
  EXPECT_STREQ(s.final->request_id, first.request_id);
}

TEST_P(StreamMock, TokensArriveAtTheServersPaceAndTimingIsReported) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path());
  uint64_t id = submit(e.get(), m.url(),
                       {{"x-mock-stream-tokens", "8"}, {"x-mock-stream-interval-ms", "40"}, {"x-mock-first-token-ms", "150"}});
  auto streams = collect(e.get(), 1);
  Stream& s = streams[id];
  ASSERT_TRUE(s.final);
  const brg_result& f = *s.final;
  ASSERT_EQ(f.status, BRG_OK) << f.error;
  EXPECT_EQ(content_of(s), " tok1 tok2 tok3 tok4 tok5 tok6 tok7 tok8");
  EXPECT_EQ(f.completion_tokens, 8);
  // The first token came the server's 150 ms pause after the role event:
  // never sooner after sending, and not much later than that after the headers.
  EXPECT_GE(f.ttft_us - f.sent_us, 150 * 1000);
  EXPECT_LE(f.ttft_us - f.ttfb_us, 150 * 1000 + 150 * 1000);
  // Seven gaps of 40 ms between the eight tokens: never shorter than the pace.
  EXPECT_GE(f.gap_mean_us, 40 * 1000 - 5000);  // a late-read first token shortens the mean
  EXPECT_LE(f.gap_mean_us, 40 * 1000 + 100 * 1000);
  EXPECT_GE(f.gap_max_us, f.gap_mean_us);
}

TEST_P(StreamMock, FirstTokenTimeoutEndsASilentStream) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path());
  uint64_t id = submit(e.get(), m.url(), {{"x-mock-stream-tokens", "3"}, {"x-mock-first-token-ms", "2000"}},
                       /*first_token_ms=*/200);
  auto t0 = std::chrono::steady_clock::now();
  auto streams = collect(e.get(), 1);
  auto took = std::chrono::steady_clock::now() - t0;
  Stream& s = streams[id];
  ASSERT_TRUE(s.final);
  EXPECT_EQ(s.final->status, BRG_E_TIMEOUT);
  EXPECT_NE(std::string(s.final->error).find("first-token timeout of 200 ms"), std::string::npos) << s.final->error;
  // The role event went out before the timeout, so the request is not retried.
  EXPECT_EQ(s.partials.size(), 1u);
  EXPECT_EQ(s.final->attempts, 1u);
  EXPECT_EQ(s.final->ttft_us, -1);
  EXPECT_GE(took, std::chrono::milliseconds(200));
  EXPECT_LT(took, std::chrono::milliseconds(1500));
}

TEST_P(StreamMock, IdleTimeoutEndsAStreamThatGoesQuietAndKeepsWhatArrived) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path());
  uint64_t id = submit(e.get(), m.url(), {{"x-mock-stream-tokens", "10"}, {"x-mock-stream-stall-after", "2"}}, 0,
                       /*idle_ms=*/250);
  auto streams = collect(e.get(), 1);
  Stream& s = streams[id];
  ASSERT_TRUE(s.final);
  EXPECT_EQ(s.final->status, BRG_E_TIMEOUT);
  EXPECT_NE(std::string(s.final->error).find("idle timeout of 250 ms"), std::string::npos) << s.final->error;
  EXPECT_EQ(content_of(s), " tok1 tok2");
  EXPECT_EQ(s.final->events, 3u);
  EXPECT_GE(s.final->ttft_us, 0);
  EXPECT_GE(s.final->total_us - s.final->ttft_us, 250 * 1000);
}

TEST_P(StreamMock, ResetMidStreamFailsWithoutARetryThatWouldRepeatEvents) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path());
  uint64_t id = submit(e.get(), m.url(), {{"x-mock-stream-tokens", "10"}, {"x-mock-stream-reset-after", "3"}});
  auto streams = collect(e.get(), 1);
  Stream& s = streams[id];
  ASSERT_TRUE(s.final);
  EXPECT_EQ(s.final->status, BRG_E_IO) << s.final->error;
  EXPECT_EQ(s.final->attempts, 1u);
  EXPECT_EQ(content_of(s), " tok1 tok2 tok3");
}

TEST_P(StreamMock, CancelMidStreamClosesTheConnectionAtOnce) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path());
  uint64_t id = submit(e.get(), m.url(), {{"x-mock-stream-tokens", "100"}, {"x-mock-stream-interval-ms", "50"}});
  bool cancelled = false;
  std::chrono::steady_clock::time_point cancel_at;
  auto streams = collect(e.get(), 1, [&](const brg_result& p) {
    if (!cancelled && p.events == 3) {
      cancelled = true;
      cancel_at = std::chrono::steady_clock::now();
      EXPECT_EQ(brg_cancel(e.get(), id), 0);
    }
  });
  Stream& s = streams[id];
  ASSERT_TRUE(s.final);
  EXPECT_EQ(s.final->status, BRG_E_CANCELLED);
  EXPECT_EQ(s.partials.size(), 3u);  // nothing after the cancel
  // The server sees the connection go well before its 5 s stream ends,
  // without the caller polling again.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (m.server->stats().streams_cancelled < 1 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(m.server->stats().streams_cancelled, 1u);
  EXPECT_LT(std::chrono::steady_clock::now() - cancel_at, std::chrono::milliseconds(1000));
  EXPECT_EQ(e.stats().connections_open, 0u);
}

TEST_P(StreamMock, ErrorAnswersAreNotParsedAsStreams) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path());
  uint64_t id = submit(e.get(), m.url(), {{"x-mock-status", "400"}});
  auto streams = collect(e.get(), 1);
  Stream& s = streams[id];
  ASSERT_TRUE(s.final);
  EXPECT_EQ(s.final->status, BRG_E_HTTP);
  EXPECT_EQ(s.final->http_status, 400);
  EXPECT_TRUE(s.partials.empty());
  EXPECT_NE(body_of(*s.final).find("\"error\""), std::string::npos);
}

TEST_P(StreamMock, PartialResultsDoNotCountAsPendingRequests) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path(), {{BRG_OPT_MAX_PENDING, 2}});
  uint64_t a = submit(e.get(), m.url(), {{"x-mock-stream-tokens", "20"}});
  auto first = collect(e.get(), 1);
  ASSERT_TRUE(first[a].final);
  EXPECT_GE(first[a].partials.size(), 20u);
  // Twenty partial results were taken, but only one request ended: two more fit.
  submit(e.get(), m.url(), {});
  submit(e.get(), m.url(), {});
  collect(e.get(), 2);
}

TEST_P(StreamMock, RefusedSubmitsChangeNoEngineState) {
  // Four streamed submits refused for bad stream timeouts, with room for
  // four pending requests: every later submit must still fit.
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path(), {{BRG_OPT_MAX_PENDING, 4}});
  std::string url = m.url();
  for (int i = 0; i < 4; ++i) {
    brg_request r{};
    r.size = sizeof r;
    r.flags = BRG_REQ_STREAM;
    r.url = url.c_str();
    r.body = kStreamBody.data();
    r.body_len = kStreamBody.size();
    r.max_retries = -1;
    (i % 2 ? r.first_token_timeout_ms : r.stream_idle_timeout_ms) = -1;
    uint64_t id = 0;
    EXPECT_EQ(brg_submit(e.get(), &r, &id), BRG_E_INVALID);
    EXPECT_NE(std::string(brg_last_error()).find("must be >= 0"), std::string::npos) << brg_last_error();
  }
  for (int i = 0; i < 4; ++i) submit(e.get(), m.url(), {{"x-mock-stream-tokens", "2"}});
  auto streams = collect(e.get(), 4);
  for (auto& [id, s] : streams) {
    ASSERT_TRUE(s.final);
    EXPECT_EQ(s.final->status, BRG_OK) << s.final->error;
  }
  EXPECT_EQ(e.stats().submitted, 4u) << "refused submits are not counted";
}

TEST_P(StreamMock, OneRequestSwitchesTheEnginesIdleTimeoutOff) {
  // The engine's idle timeout (100 ms) would end a stream pausing 300 ms
  // between tokens; BRG_NO_TIMEOUT on one request switches it off for that
  // request only.
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path(), {{BRG_OPT_STREAM_IDLE_TIMEOUT_MS, 100}});
  Headers slow = {{"x-mock-stream-tokens", "3"}, {"x-mock-stream-interval-ms", "300"}};
  uint64_t off = submit(e.get(), m.url(), slow, 0, BRG_NO_TIMEOUT);
  uint64_t engines = submit(e.get(), m.url(), slow, 0, 0);
  auto streams = collect(e.get(), 2);
  ASSERT_TRUE(streams[off].final && streams[engines].final);
  EXPECT_EQ(streams[off].final->status, BRG_OK) << streams[off].final->error;
  EXPECT_EQ(content_of(streams[off]), " tok1 tok2 tok3");
  EXPECT_EQ(streams[engines].final->status, BRG_E_TIMEOUT) << "the engine's setting still holds for the other";
  EXPECT_NE(std::string(streams[engines].final->error).find("idle timeout of 100 ms"), std::string::npos);
}

// Stream fields and flags that make no sense are refused, saying which.
TEST_P(StreamMock, BadStreamTimeoutsAndFlagsAreRefused) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path());
  const std::string url = m.url();
  auto refused = [&](uint32_t flags, int64_t first_token_ms, const char* why) {
    brg_request r{};
    r.size = sizeof r;
    r.flags = flags;
    r.url = url.c_str();
    r.max_retries = -1;
    r.first_token_timeout_ms = first_token_ms;
    EXPECT_EQ(brg_submit(e.get(), &r, nullptr), BRG_E_INVALID) << why;
    EXPECT_NE(std::string(brg_last_error()).find(why), std::string::npos) << brg_last_error();
  };
  refused(BRG_REQ_STREAM, -1, "first_token_timeout_ms");
  refused(BRG_REQ_NO_STREAM_BODY, 0, "BRG_REQ_STREAM");  // the flag means nothing without a stream
}

// BRG_REQ_NO_STREAM_BODY: the events go out as partials and the stream's
// bytes are not kept, so a stream far longer than BRG_OPT_MAX_RESPONSE_BYTES
// ends BRG_OK with an empty final body; without the flag the same stream is
// too large. An error answer keeps its body either way.
TEST_P(StreamMock, AStreamWithoutBodyKeepsNoBytesAndOutgrowsTheBodyLimit) {
  MockEndpoint m = MockEndpoint::start();
  Engine e(backend(), m.ca->path(), {{BRG_OPT_MAX_RESPONSE_BYTES, 4096}, {BRG_OPT_MAX_RETRIES, 0}});
  const Headers long_stream = {{"x-mock-stream-tokens", "200"}, {"x-mock-stream-interval-ms", "1"}};
  uint64_t lean = submit(e.get(), m.url(), long_stream, 0, 0, kStreamBody, BRG_REQ_NO_STREAM_BODY);
  uint64_t whole = submit(e.get(), m.url(), long_stream);
  uint64_t refused = submit(e.get(), m.url(), {{"x-mock-status", "400"}}, 0, 0, kStreamBody, BRG_REQ_NO_STREAM_BODY);
  auto streams = collect(e.get(), 3);
  const Stream& l = streams[lean];
  ASSERT_TRUE(l.final);
  ASSERT_EQ(l.final->status, BRG_OK) << l.final->error;
  EXPECT_EQ(l.final->body_len, 0u);
  EXPECT_STREQ(l.final->body, "");
  EXPECT_GE(l.partials.size(), 202u);  // role, 200 tokens, usage
  EXPECT_EQ(l.final->events, l.partials.size());
  std::string expected;
  for (int i = 1; i <= 200; ++i) expected += " tok" + std::to_string(i);
  EXPECT_EQ(content_of(l), expected);
  EXPECT_EQ(l.final->completion_tokens, 200);  // usage still read from the events
  const Stream& w = streams[whole];
  ASSERT_TRUE(w.final);
  EXPECT_EQ(w.final->status, BRG_E_TOO_LARGE) << w.final->error;
  const Stream& r = streams[refused];
  ASSERT_TRUE(r.final);
  EXPECT_EQ(r.final->http_status, 400);
  EXPECT_NE(body_of(*r.final).find("\"error\""), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Backends, StreamMock, ::testing::Values(BRG_BACKEND_IO_URING, BRG_BACKEND_EPOLL),
                         backend_label);

}  // namespace
}  // namespace barrage::testing
