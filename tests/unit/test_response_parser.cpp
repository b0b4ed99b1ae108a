// Unit tests for engine/http/response_parser: framing (Content-Length,
// chunked, close-delimited), keep-alive, 1xx, limits, errors and reuse.
#include "http/response_parser.hpp"

#include <gtest/gtest.h>

#include <string>

namespace barrage::http {
namespace {

using State = ResponseParser::State;
using Error = ResponseParser::Error;

struct FeedResult {
  State state;
  size_t consumed;
};

FeedResult feed(ResponseParser& p, std::string_view bytes) {
  size_t consumed = 12345;
  const State s = p.feed(bytes.data(), bytes.size(), &consumed);
  return {s, consumed};
}

// Feeds one byte per call, as a slow network would, from a fresh heap copy
// each time so that ASan catches any pointer kept into an earlier buffer.
State feed_bytewise(ResponseParser& p, std::string_view bytes, size_t* total = nullptr) {
  State s = p.state();
  size_t sum = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const std::string one(1, bytes[i]);
    size_t consumed = 0;
    s = p.feed(one.data(), 1, &consumed);
    sum += consumed;
    if (s != State::need_more) break;
    EXPECT_EQ(consumed, 1u);
  }
  if (total) *total = sum;
  return s;
}

// Feeds the response split into two pieces at every possible point.
void expect_every_split(std::string_view raw, std::string_view body, int status = 200) {
  for (size_t cut = 0; cut < raw.size(); ++cut) {
    ResponseParser p(ResponseLimits{});
    const auto a = feed(p, raw.substr(0, cut));
    ASSERT_EQ(a.state, State::need_more) << "cut " << cut;
    ASSERT_EQ(a.consumed, cut);
    const auto b = feed(p, raw.substr(cut));
    ASSERT_EQ(b.state, State::complete) << "cut " << cut << ": " << p.error_message();
    ASSERT_EQ(b.consumed, raw.size() - cut);
    ASSERT_EQ(p.status(), status);
    ASSERT_EQ(p.body(), body) << "cut " << cut;
  }
}

constexpr std::string_view kChunked =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/json\r\n"
    "Transfer-Encoding: chunked\r\n"
    "\r\n"
    "7\r\n{\"id\":1\r\n"
    "a;name=value\r\n,\"ok\":true\r\n"
    "1;q=\"x;y\";flag\r\n}\r\n"
    "0\r\n"
    "X-Trailer: t\r\n"
    "\r\n";

TEST(ResponseParser, ContentLengthBody) {
  ResponseParser p(ResponseLimits{});
  EXPECT_EQ(p.state(), State::need_more);
  EXPECT_FALSE(p.started());
  const std::string raw =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\":true}\n";
  const auto r = feed(p, raw);
  EXPECT_EQ(r.state, State::complete);
  EXPECT_EQ(r.consumed, raw.size());
  EXPECT_TRUE(p.started());
  EXPECT_TRUE(p.headers_complete());
  EXPECT_EQ(p.status(), 200);
  EXPECT_EQ(p.body(), "{\"a\":true}\n");
  EXPECT_TRUE(p.keep_alive());
  EXPECT_EQ(p.error(), Error::none);
  EXPECT_EQ(p.error_message(), "");
  ASSERT_EQ(p.headers().size(), 2u);
  EXPECT_EQ(p.headers()[0].first, "Content-Type");
  EXPECT_EQ(p.headers()[0].second, "application/json");
  EXPECT_EQ(p.header("content-length"), "11");
}

TEST(ResponseParser, ContentLengthEverySplit) {
  expect_every_split("HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhello", "hello", 201);
}

TEST(ResponseParser, ChunkedBodyOneByteAtATime) {
  ResponseParser p(ResponseLimits{});
  size_t total = 0;
  EXPECT_EQ(feed_bytewise(p, kChunked, &total), State::complete) << p.error_message();
  EXPECT_EQ(total, kChunked.size());
  EXPECT_EQ(p.body(), "{\"id\":1,\"ok\":true}");
  EXPECT_EQ(p.header("Content-Type"), "application/json");
  EXPECT_EQ(p.header("X-Trailer"), "") << "trailers are not reported as headers";
  EXPECT_EQ(p.headers().size(), 2u);
  EXPECT_TRUE(p.keep_alive());
}

TEST(ResponseParser, ChunkedEverySplit) { expect_every_split(kChunked, "{\"id\":1,\"ok\":true}"); }

TEST(ResponseParser, StatusWithoutReasonPhrase) {
  ResponseParser p(ResponseLimits{});
  EXPECT_EQ(feed(p, "HTTP/1.1 204\r\n\r\n").state, State::complete);
  EXPECT_EQ(p.status(), 204);
  EXPECT_EQ(p.body(), "");
}

TEST(ResponseParser, KeepAliveRules) {
  struct Case {
    std::string_view raw;
    bool keep_alive;
  } cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
      {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", true},
      {"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nContent-Length: 2\r\n\r\n{}", true},
  };
  for (const auto& c : cases) {
    ResponseParser p(ResponseLimits{});
    ASSERT_EQ(feed(p, c.raw).state, State::complete) << c.raw;
    EXPECT_EQ(p.keep_alive(), c.keep_alive) << c.raw;
  }
}

TEST(ResponseParser, CloseDelimitedBodyCompletesAtFinish) {
  ResponseParser p(ResponseLimits{});
  auto r = feed(p, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, ");
  EXPECT_EQ(r.state, State::need_more);
  EXPECT_TRUE(p.headers_complete());
  r = feed(p, "part two");
  EXPECT_EQ(r.state, State::need_more);
  EXPECT_EQ(r.consumed, 8u);
  EXPECT_EQ(p.finish(), State::complete);
  EXPECT_EQ(p.state(), State::complete);
  EXPECT_EQ(p.body(), "part one, part two");
  EXPECT_FALSE(p.keep_alive());
  EXPECT_EQ(p.finish(), State::complete) << "finish is idempotent";
}

TEST(ResponseParser, CloseDelimitedEmptyBody) {
  ResponseParser p(ResponseLimits{});
  EXPECT_EQ(feed(p, "HTTP/1.0 200 OK\r\n\r\n").state, State::need_more);
  EXPECT_EQ(p.finish(), State::complete);
  EXPECT_EQ(p.body(), "");
  EXPECT_FALSE(p.keep_alive());
}

TEST(ResponseParser, ContinueIsSkipped) {
  const std::string raw =
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 102 Processing\r\nX-Interim: yes\r\n\r\n"
      "HTTP/1.1 200 OK\r\nX-Final: yes\r\nContent-Length: 2\r\n\r\nok";
  ResponseParser p(ResponseLimits{});
  const auto r = feed(p, raw);
  EXPECT_EQ(r.state, State::complete) << p.error_message();
  EXPECT_EQ(r.consumed, raw.size());
  EXPECT_EQ(p.status(), 200);
  EXPECT_EQ(p.body(), "ok");
  EXPECT_EQ(p.header("X-Interim"), "");
  EXPECT_EQ(p.header("X-Final"), "yes");
  EXPECT_EQ(p.headers().size(), 2u);

  ResponseParser q(ResponseLimits{});
  EXPECT_EQ(feed_bytewise(q, raw), State::complete);
  EXPECT_EQ(q.status(), 200);
  EXPECT_EQ(q.body(), "ok");
}

TEST(ResponseParser, ContinueAloneIsNotAResponse) {
  ResponseParser p(ResponseLimits{});
  EXPECT_EQ(feed(p, "HTTP/1.1 100 Continue\r\n\r\n").state, State::need_more);
  EXPECT_TRUE(p.started());
  EXPECT_EQ(p.finish(), State::error);
  EXPECT_EQ(p.error(), Error::protocol);
  EXPECT_EQ(p.error_message(), "connection closed before end of response");
}

TEST(ResponseParser, SwitchingProtocolsIsAnError) {
  ResponseParser p(ResponseLimits{});
  EXPECT_EQ(feed(p, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n")
                .state,
            State::error);
  EXPECT_EQ(p.error(), Error::protocol);
  EXPECT_EQ(p.error_message(), "unexpected 101 Switching Protocols");
}

TEST(ResponseParser, TruncatedBodyThenFinishIsProtocolError) {
  ResponseParser p(ResponseLimits{});
  EXPECT_EQ(feed(p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345").state, State::need_more);
  EXPECT_EQ(p.finish(), State::error);
  EXPECT_EQ(p.error(), Error::protocol);
  EXPECT_EQ(p.error_message(), "connection closed before end of response");
  EXPECT_FALSE(p.keep_alive());

  ResponseParser c(ResponseLimits{});
  EXPECT_EQ(feed(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabc").state, State::need_more);
  EXPECT_EQ(c.finish(), State::error);
  EXPECT_EQ(c.error(), Error::protocol);

  ResponseParser h(ResponseLimits{});
  EXPECT_EQ(feed(h, "HTTP/1.1 200 OK\r\nContent-Le").state, State::need_more);
  EXPECT_EQ(h.finish(), State::error);
  EXPECT_EQ(h.error_message(), "connection closed before end of response");
}

TEST(ResponseParser, CloseBeforeAnyByte) {
  ResponseParser p(ResponseLimits{});
  EXPECT_FALSE(p.started());
  EXPECT_EQ(p.finish(), State::error);
  EXPECT_EQ(p.error(), Error::protocol);
  EXPECT_EQ(p.error_message(), "connection closed before response");
  EXPECT_FALSE(p.started()) << "the pool uses this to spot a stale keep-alive connection";
}

TEST(ResponseParser, MalformedStatusLine) {
  for (std::string_view raw : {"HTTX/1.1 200 OK\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n", "hello world\r\n\r\n",
                               "<html>\r\n", "HTTP/1.1 OK\r\n\r\n",
                               "HTTP/1.1 099 Low\r\n\r\n"}) {
    ResponseParser p(ResponseLimits{});
    EXPECT_EQ(feed(p, raw).state, State::error) << raw;
    EXPECT_EQ(p.error(), Error::protocol) << raw;
    EXPECT_EQ(p.error_message(), "invalid HTTP status line") << raw;
    EXPECT_EQ(feed(p, "more").state, State::error) << "errors are sticky";
  }
}

TEST(ResponseParser, MalformedAfterStatusLine) {
  ResponseParser p(ResponseLimits{});
  EXPECT_EQ(feed(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").state, State::error);
  EXPECT_EQ(p.error(), Error::protocol);
  EXPECT_EQ(p.error_message().rfind("invalid HTTP response: ", 0), 0u) << p.error_message();

  ResponseParser q(ResponseLimits{});
  EXPECT_EQ(feed(q, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").state, State::error);
  EXPECT_EQ(q.error(), Error::protocol);

  ResponseParser s(ResponseLimits{});
  EXPECT_EQ(feed(s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n").state,
            State::error)
      << "both framings at once is a smuggling vector";
}

TEST(ResponseParser, HeaderLimitIsExact) {
  const std::string head =
      "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Pad: " + std::string(100, 'p') + "\r\n\r\n";
  {
    ResponseParser p(ResponseLimits{head.size(), 1024});
    EXPECT_EQ(feed(p, head + "rest").state, State::complete) << p.error_message();
    EXPECT_EQ(p.header("x-pad").size(), 100u);
  }
  {
    ResponseParser p(ResponseLimits{head.size() - 1, 1024});
    EXPECT_EQ(feed(p, head).state, State::error);
    EXPECT_EQ(p.error(), Error::too_large);
    EXPECT_EQ(p.error_message(), "response headers exceed " + std::to_string(head.size() - 1) + " bytes");
  }
  {
    ResponseParser p(ResponseLimits{head.size() - 1, 1024});
    EXPECT_EQ(feed_bytewise(p, head), State::error);
    EXPECT_EQ(p.error(), Error::too_large);
  }
}

TEST(ResponseParser, DefaultHeaderLimit) {
  ResponseParser p(ResponseLimits{});
  std::string raw = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; raw.size() < 70000; ++i) raw += "X-H" + std::to_string(i) + ": " + std::string(50, 'v') + "\r\n";
  raw += "\r\n";
  const auto r = feed(p, raw);
  EXPECT_EQ(r.state, State::error);
  EXPECT_EQ(p.error(), Error::too_large);
  EXPECT_EQ(p.error_message(), "response headers exceed 65536 bytes");
}

TEST(ResponseParser, InterimHeadersCountTowardTheLimit) {
  std::string raw;
  for (int i = 0; i < 100; ++i) raw += "HTTP/1.1 100 Continue\r\n\r\n";  // 25 bytes each
  ResponseParser p(ResponseLimits{1000, 1024});
  EXPECT_EQ(feed(p, raw).state, State::error);
  EXPECT_EQ(p.error(), Error::too_large);
}

TEST(ResponseParser, BodyLimitContentLength) {
  {
    ResponseParser p(ResponseLimits{4096, 10});
    EXPECT_EQ(feed(p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789").state, State::complete);
    EXPECT_EQ(p.body(), "0123456789");
  }
  {
    // Refused as soon as the headers announce too much, before any body byte.
    ResponseParser p(ResponseLimits{4096, 10});
    EXPECT_EQ(feed(p, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n").state, State::error);
    EXPECT_EQ(p.error(), Error::too_large);
    EXPECT_EQ(p.error_message(), "response body exceeds 10 bytes");
    EXPECT_EQ(p.body(), "");
  }
  {
    ResponseParser p(ResponseLimits{4096, 10});
    EXPECT_EQ(feed(p, "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999\r\n\r\n").state, State::error);
    EXPECT_EQ(p.error(), Error::too_large);
  }
}

TEST(ResponseParser, BodyLimitChunked) {
  const std::string ok = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n";
  {
    ResponseParser p(ResponseLimits{4096, 10});
    EXPECT_EQ(feed(p, ok).state, State::complete);
    EXPECT_EQ(p.body(), "0123456789");
  }
  const std::string over = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n6\r\n56789A\r\n0\r\n\r\n";
  {
    ResponseParser p(ResponseLimits{4096, 10});
    EXPECT_EQ(feed(p, over).state, State::error);
    EXPECT_EQ(p.error(), Error::too_large);
    EXPECT_EQ(p.error_message(), "response body exceeds 10 bytes");
    EXPECT_LE(p.body().size(), 10u) << "never grows past the limit";
  }
  {
    ResponseParser p(ResponseLimits{4096, 10});
    EXPECT_EQ(feed_bytewise(p, over), State::error);
    EXPECT_EQ(p.error(), Error::too_large);
    EXPECT_EQ(p.body(), "0123456789");
  }
}

TEST(ResponseParser, BodyLimitCloseDelimited) {
  ResponseParser p(ResponseLimits{4096, 4});
  EXPECT_EQ(feed(p, "HTTP/1.1 200 OK\r\n\r\n1234").state, State::need_more);
  EXPECT_EQ(feed(p, "5").state, State::error);
  EXPECT_EQ(p.error(), Error::too_large);
  EXPECT_EQ(p.body(), "1234");
}

TEST(ResponseParser, HeaderLookupIsCaseInsensitiveFirstMatch) {
  ResponseParser p(ResponseLimits{});
  ASSERT_EQ(feed(p,
                 "HTTP/1.1 429 Too Many Requests\r\n"
                 "retry-after:   7  \r\n"
                 "Set-Cookie: a=1\r\n"
                 "SET-COOKIE: b=2\r\n"
                 "X-Empty:\r\n"
                 "Content-Length: 0\r\n\r\n")
                .state,
            State::complete);
  EXPECT_EQ(p.status(), 429);
  EXPECT_EQ(p.header("Retry-After"), "7") << "value trimmed";
  EXPECT_EQ(p.header("RETRY-AFTER"), "7");
  EXPECT_EQ(p.header("set-cookie"), "a=1");
  EXPECT_EQ(p.header("x-empty"), "");
  EXPECT_EQ(p.header("absent"), "");
  EXPECT_EQ(p.header("Retry-Afte"), "");
  ASSERT_EQ(p.headers().size(), 5u);
  EXPECT_EQ(p.headers()[1].first, "Set-Cookie");
  EXPECT_EQ(p.headers()[2].first, "SET-COOKIE");
  EXPECT_EQ(p.headers()[3].first, "X-Empty");
  EXPECT_EQ(p.headers()[3].second, "");
}

TEST(ResponseParser, HeaderValuesSplitAcrossFeedsAreJoined) {
  ResponseParser p(ResponseLimits{});
  const std::string raw = "HTTP/1.1 200 OK\r\nX-Request-Id: abc-def-ghi\r\nContent-Length: 0\r\n\r\n";
  EXPECT_EQ(feed_bytewise(p, raw), State::complete);
  EXPECT_EQ(p.header("x-request-id"), "abc-def-ghi");
  EXPECT_EQ(p.headers().size(), 2u);
}

TEST(ResponseParser, ReuseAfterResetForSecondResponse) {
  ResponseParser p(ResponseLimits{});
  ASSERT_EQ(feed(p, "HTTP/1.1 500 Oops\r\nX-First: 1\r\nContent-Length: 3\r\n\r\nbad").state, State::complete);
  EXPECT_EQ(p.status(), 500);
  std::string taken = std::move(p.body());
  EXPECT_EQ(taken, "bad");

  p.reset();
  EXPECT_EQ(p.state(), State::need_more);
  EXPECT_FALSE(p.started());
  EXPECT_FALSE(p.headers_complete());
  EXPECT_EQ(p.status(), 0);
  EXPECT_TRUE(p.headers().empty());
  EXPECT_EQ(p.body(), "");

  ASSERT_EQ(feed_bytewise(p, kChunked), State::complete);
  EXPECT_EQ(p.status(), 200);
  EXPECT_EQ(p.header("X-First"), "");
  EXPECT_EQ(p.body(), "{\"id\":1,\"ok\":true}");

  // And after an error too.
  p.reset();
  EXPECT_EQ(feed(p, "garbage\r\n").state, State::error);
  p.reset();
  EXPECT_EQ(p.error(), Error::none);
  EXPECT_EQ(p.error_message(), "");
  EXPECT_EQ(feed(p, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx").state, State::complete);
  EXPECT_EQ(p.body(), "x");
}

TEST(ResponseParser, ManyResponsesReuseOneParser) {
  ResponseParser p(ResponseLimits{});
  for (int i = 0; i < 200; ++i) {
    p.reset();
    const std::string body = "body" + std::to_string(i);
    const std::string raw = "HTTP/1.1 200 OK\r\nX-N: " + std::to_string(i) +
                            "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    ASSERT_EQ(feed(p, raw).state, State::complete);
    ASSERT_EQ(p.header("x-n"), std::to_string(i));
    ASSERT_EQ(p.body(), body);
    ASSERT_EQ(p.headers().size(), 2u);
  }
}

TEST(ResponseParser, ResetReleasesHugeBuffers) {
  ResponseParser p(ResponseLimits{1 << 20, 8u << 20});
  const std::string body(4u << 20, 'b');
  ASSERT_EQ(feed(p, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body).state,
            State::complete);
  EXPECT_GE(p.body().capacity(), body.size());
  p.reset();
  EXPECT_LT(p.body().capacity(), body.size()) << "an idle connection must not pin a huge body";

  std::string many = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 5000; ++i) {
    many += 'h';
    many += std::to_string(i);
    many += ": v\r\n";
  }
  many += "Content-Length: 0\r\n\r\n";
  ASSERT_EQ(feed(p, many).state, State::complete);
  EXPECT_EQ(p.headers().size(), 5001u);
  EXPECT_EQ(p.header("H4999"), "v");
  p.reset();
  ASSERT_EQ(feed(p, "HTTP/1.1 200 OK\r\nA: 1\r\nContent-Length: 0\r\n\r\n").state, State::complete);
  EXPECT_EQ(p.headers().size(), 2u);
  EXPECT_EQ(p.header("a"), "1");
}

TEST(ResponseParser, BytesAfterResponseAreNotConsumed) {
  const std::string first = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
  const std::string extra = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
  ResponseParser p(ResponseLimits{});
  const auto r = feed(p, first + extra);
  EXPECT_EQ(r.state, State::complete);
  EXPECT_EQ(r.consumed, first.size());
  EXPECT_EQ(p.body(), "hi");

  // Once complete, nothing more is taken.
  const auto again = feed(p, extra);
  EXPECT_EQ(again.state, State::complete);
  EXPECT_EQ(again.consumed, 0u);

  // Same for a chunked and a body-less response.
  ResponseParser c(ResponseLimits{});
  EXPECT_EQ(feed(c, std::string(kChunked) + "JUNK").consumed, kChunked.size());
  ResponseParser n(ResponseLimits{});
  const std::string not_modified = "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n";
  const auto nm = feed(n, not_modified + "JUNK");
  EXPECT_EQ(nm.state, State::complete);
  EXPECT_EQ(nm.consumed, not_modified.size()) << "a 304 has no body whatever Content-Length says";
  EXPECT_EQ(n.body(), "");
  ResponseParser nc(ResponseLimits{});
  const std::string no_content = "HTTP/1.1 204 No Content\r\nContent-Length: 4\r\n\r\n";
  const auto r204 = feed(nc, no_content + "JUNK");
  EXPECT_EQ(r204.state, State::complete);
  EXPECT_EQ(r204.consumed, no_content.size());
  EXPECT_TRUE(nc.keep_alive());
}

TEST(ResponseParser, HeadResponseHasNoBody) {
  ResponseParser p(ResponseLimits{4096, 10});
  p.reset(/*head_request=*/true);
  const std::string raw = "HTTP/1.1 200 OK\r\nContent-Length: 123456\r\n\r\n";
  const auto r = feed(p, raw + "next");
  EXPECT_EQ(r.state, State::complete) << p.error_message();
  EXPECT_EQ(r.consumed, raw.size());
  EXPECT_EQ(p.body(), "");
  EXPECT_EQ(p.header("content-length"), "123456");
  EXPECT_TRUE(p.keep_alive());

  p.reset(false);
  EXPECT_EQ(feed(p, raw).state, State::error) << "the HEAD flag does not stick";
}

TEST(ResponseParser, EmptyFeed) {
  ResponseParser p(ResponseLimits{});
  EXPECT_EQ(feed(p, "").state, State::need_more);
  EXPECT_EQ(feed(p, "").consumed, 0u);
  EXPECT_FALSE(p.started());
  size_t consumed = 7;
  EXPECT_EQ(p.feed(nullptr, 0, &consumed), State::need_more);
  EXPECT_EQ(consumed, 0u);
}

TEST(ResponseParser, MovedParserKeepsWorking) {
  ResponseParser a(ResponseLimits{});
  EXPECT_EQ(feed(a, "HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-").state, State::need_more);
  ResponseParser b(std::move(a));
  EXPECT_EQ(feed(b, "Length: 3\r\n\r\nabc").state, State::complete);
  EXPECT_EQ(b.body(), "abc");
  EXPECT_EQ(b.header("x-a"), "1");
}

}  // namespace
}  // namespace barrage::http
