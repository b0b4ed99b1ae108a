// Unit tests for the mock server's request parser and JSON helpers: framing
// edge cases are far cheaper to pin down here than over a socket.
#include <gtest/gtest.h>

#include <string>

#include "http_request.hpp"
#include "request_json.hpp"
#include "responses.hpp"

namespace barrage::mock {
namespace {

ParseResult parse(std::string_view in, HttpRequest* req, std::string* buf) {
  return parse_request(in, req, buf);
}

TEST(HttpRequestParser, ContentLengthRequestIsComplete) {
  std::string in =
      "POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
      "X-Mock-Status: 429\r\nx-mock-fault:  stall \r\n\r\nhello";
  HttpRequest req;
  std::string buf;
  ParseResult r = parse(in, &req, &buf);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.consumed, in.size());
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.path(), "/v1/chat/completions");
  EXPECT_EQ(req.body, "hello");
  EXPECT_EQ(req.mock_status, "429");
  EXPECT_EQ(req.mock_fault, "stall");
  EXPECT_TRUE(req.keep_alive);
}

TEST(HttpRequestParser, IncompleteUntilWholeBodyArrives) {
  std::string in = "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345";
  HttpRequest req;
  std::string buf;
  ParseResult r = parse(in, &req, &buf);
  EXPECT_EQ(r.status, ParseStatus::kIncomplete);
  EXPECT_TRUE(r.headers_done);
  r = parse("POST / HTTP/1.1\r\nContent-Len", &req, &buf);
  EXPECT_EQ(r.status, ParseStatus::kIncomplete);
  EXPECT_FALSE(r.headers_done);
}

TEST(HttpRequestParser, PipelinedRequestsParseOneAtATime) {
  std::string one = "GET /health HTTP/1.1\r\n\r\n";
  std::string two = "POST /x HTTP/1.1\r\nContent-Length: 2\r\n\r\nab";
  std::string in = one + two;
  HttpRequest req;
  std::string buf;
  ParseResult r = parse(in, &req, &buf);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.consumed, one.size());
  EXPECT_EQ(req.target, "/health");
  r = parse(std::string_view(in).substr(r.consumed), &req, &buf);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(req.body, "ab");
}

TEST(HttpRequestParser, ChunkedBodyIsDecoded) {
  std::string in =
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nGET";
  HttpRequest req;
  std::string buf;
  ParseResult r = parse(in, &req, &buf);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(req.body, "hello world");
  EXPECT_EQ(r.consumed, in.size() - 3);
  // Every strict prefix is incomplete, never an error.
  for (size_t n = 0; n < in.size() - 3; ++n) {
    ParseResult p = parse(std::string_view(in).substr(0, n), &req, &buf);
    EXPECT_EQ(p.status, ParseStatus::kIncomplete) << "prefix " << n;
  }
}

TEST(HttpRequestParser, RejectsAmbiguousOrBadFraming) {
  HttpRequest req;
  std::string buf;
  EXPECT_EQ(parse("POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                  &req, &buf).error_status, 400);
  EXPECT_EQ(parse("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", &req, &buf)
                .error_status, 400);
  EXPECT_EQ(parse("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", &req, &buf).error_status, 400);
  EXPECT_EQ(parse("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", &req, &buf).error_status, 501);
  EXPECT_EQ(parse("GET / HTTP/2.0\r\n\r\n", &req, &buf).error_status, 505);
  EXPECT_EQ(parse("GET /\r\n\r\n", &req, &buf).error_status, 400);
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", &req, &buf).error_status, 400);
  EXPECT_EQ(parse("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", &req, &buf).error_status, 400);
  EXPECT_EQ(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", &req, &buf)
                .error_status, 400);
}

TEST(HttpRequestParser, EnforcesSizeLimits) {
  HttpRequest req;
  std::string buf;
  std::string big = "GET / HTTP/1.1\r\nX: " + std::string(kMaxHeaderBytes, 'a');
  EXPECT_EQ(parse(big, &req, &buf).error_status, 400);
  std::string cl = "POST / HTTP/1.1\r\nContent-Length: " + std::to_string(kMaxBodyBytes + 1) + "\r\n\r\n";
  EXPECT_EQ(parse(cl, &req, &buf).error_status, 413);
  std::string chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1000001\r\n";
  EXPECT_EQ(parse(chunked, &req, &buf).error_status, 413);
}

TEST(HttpRequestParser, ConnectionSemantics) {
  HttpRequest req;
  std::string buf;
  ASSERT_EQ(parse("GET / HTTP/1.0\r\n\r\n", &req, &buf).status, ParseStatus::kComplete);
  EXPECT_FALSE(req.keep_alive);
  ASSERT_EQ(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &req, &buf).status,
            ParseStatus::kComplete);
  EXPECT_TRUE(req.keep_alive);
  ASSERT_EQ(parse("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n", &req, &buf).status,
            ParseStatus::kComplete);
  EXPECT_FALSE(req.keep_alive);
  ASSERT_EQ(parse("\r\nGET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n", &req, &buf).status,
            ParseStatus::kComplete);
  EXPECT_TRUE(req.expect_continue);
}

TEST(RequestJson, ChatPicksLastUserMessageAndModel) {
  RequestFields f;
  ASSERT_TRUE(scan_request_json(
      R"({"messages":[{"role":"user","content":"first"},{"content":"sys","role":"system"},)"
      R"({"content":"second \"q\" \u00e9\ud83d\ude00","role":"user"},{"role":"assistant","content":"a"}],)"
      R"("model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"n":[1,2.5e3,-0.1,null,{}]})",
      &f));
  EXPECT_EQ(f.model, "gpt-4o-mini");
  EXPECT_TRUE(f.has_text);
  EXPECT_EQ(f.last_text, "second \"q\" \xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_TRUE(f.stream);
  EXPECT_TRUE(f.include_usage);
}

TEST(RequestJson, ContentPartsAndInputs) {
  RequestFields f;
  ASSERT_TRUE(scan_request_json(
      R"({"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"b"}]}]})",
      &f));
  EXPECT_EQ(f.last_text, "ab");
  ASSERT_TRUE(scan_request_json(R"({"input":["x","y","z"]})", &f));
  EXPECT_EQ(f.input_hashes.size(), 3u);
  EXPECT_EQ(f.last_text, "z");
  ASSERT_TRUE(scan_request_json(R"({"input":[1,2,3]})", &f));
  EXPECT_EQ(f.input_hashes.size(), 1u);
  ASSERT_TRUE(scan_request_json(R"({"input":[[1,2],[3]]})", &f));
  EXPECT_EQ(f.input_hashes.size(), 2u);
  ASSERT_TRUE(scan_request_json(R"({"prompt":"hi"})", &f));
  EXPECT_EQ(f.last_text, "hi");
}

TEST(RequestJson, RejectsMalformedJson) {
  RequestFields f;
  for (const char* bad : {"", "[]", "{", "{\"a\":}", "{\"a\":1,}", "{\"a\":tru}", "{\"a\":\"\x01\"}",
                          "{\"a\":1} x", "{\"a\":\"\\x\"}", "{\"a\":01.}"}) {
    EXPECT_FALSE(scan_request_json(bad, &f)) << bad;
  }
  std::string deep(100, '[');
  EXPECT_FALSE(scan_request_json("{\"a\":" + deep + "}", &f));
}

TEST(RequestJson, EscapingRoundTripsAndRepairsUtf8) {
  std::string out;
  append_json_string(out, std::string("a\"b\\c\n\x01\xC3\xA9\xFF", 10));
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\u0001\xC3\xA9\xEF\xBF\xBD\"");
  EXPECT_EQ(utf8_prefix("h\xC3\xA9llo", 2), "h\xC3\xA9");
  EXPECT_EQ(utf8_prefix("abc", 5), "abc");
  EXPECT_EQ(count_words("  mock answer\tto\n3 bytes "), 5u);
}

TEST(Responses, ChatBodySplitsAroundContent) {
  Answer a;
  a.id = 7;
  a.created = 1;
  a.content = "x";
  a.prompt_tokens = 2;
  a.completion_tokens = 1;
  std::string whole, split;
  append_chat_body(whole, a);
  append_chat_prefix(split, a);
  split += "x";
  append_chat_suffix(split, a);
  EXPECT_EQ(whole, split);
  EXPECT_NE(whole.find("\"total_tokens\":3"), std::string::npos);
}

}  // namespace
}  // namespace barrage::mock
