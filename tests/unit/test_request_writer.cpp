// Unit tests for engine/http/request_writer: exact bytes on the wire, the
// default headers, and refusal of anything that could inject or reframe;
// and RequestHead's HTTP/2 fields, released and read again.
#include "http/request_head.hpp"
#include "http/request_writer.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace barrage::http {
namespace {

Url make_url(std::string_view text) {
  Url url;
  EXPECT_EQ(parse_url(text, true, url), "");
  return url;
}

std::string write_ok(std::string_view method, std::string_view url_text,
                     const std::vector<HeaderView>& headers, std::string_view body) {
  std::string out = "stale bytes";
  const Url url = make_url(url_text);
  EXPECT_EQ(write_request(out, method, url, headers.data(), headers.size(), body, "0.1.0"), "");
  return out;
}

std::string write_err(const std::vector<HeaderView>& headers, std::string_view method = "POST") {
  std::string out = "stale bytes";
  const Url url = make_url("https://api.example.com/v1");
  std::string reason = write_request(out, method, url, headers.data(), headers.size(), "{}", "0.1.0");
  EXPECT_NE(reason, "");
  EXPECT_EQ(out, "") << "nothing may be written for a refused request";
  return reason;
}

TEST(RequestWriter, PostWithBodyExactBytes) {
  const std::string body = R"({"model":"gpt-4o-mini","messages":[]})";
  const std::string out = write_ok("POST", "https://api.openai.com/v1/chat/completions?x=1#f",
                                   {{"Authorization", "Bearer sk-test"}}, body);
  EXPECT_EQ(out,
            "POST /v1/chat/completions?x=1 HTTP/1.1\r\n"
            "Host: api.openai.com\r\n"
            "Authorization: Bearer sk-test\r\n"
            "User-Agent: barrage/0.1.0\r\n"
            "Accept: application/json\r\n"
            "Content-Type: application/json\r\n"
            "Content-Length: 37\r\n"
            "\r\n"
            R"({"model":"gpt-4o-mini","messages":[]})");
}

TEST(RequestWriter, GetWithoutBodyHasNoLengthNorContentType) {
  EXPECT_EQ(write_ok("GET", "https://[::1]:8443/v1/models", {}, ""),
            "GET /v1/models HTTP/1.1\r\n"
            "Host: [::1]:8443\r\n"
            "User-Agent: barrage/0.1.0\r\n"
            "Accept: application/json\r\n"
            "\r\n");
}

TEST(RequestWriter, EmptyPostStillSendsContentLengthZero) {
  const std::string out = write_ok("POST", "http://localhost:8080/x", {}, "");
  EXPECT_EQ(out,
            "POST /x HTTP/1.1\r\n"
            "Host: localhost:8080\r\n"
            "User-Agent: barrage/0.1.0\r\n"
            "Accept: application/json\r\n"
            "Content-Length: 0\r\n"
            "\r\n");
  EXPECT_NE(write_ok("PUT", "https://h/x", {}, "").find("Content-Length: 0\r\n"), std::string::npos);
  EXPECT_NE(write_ok("PATCH", "https://h/x", {}, "").find("Content-Length: 0\r\n"), std::string::npos);
  EXPECT_EQ(write_ok("DELETE", "https://h/x", {}, "").find("Content-Length"), std::string::npos);
}

TEST(RequestWriter, UserDefaultsOverrideOursCaseInsensitively) {
  const std::string out = write_ok("POST", "https://h/x",
                                   {{"user-agent", "mine/2"},
                                    {"ACCEPT", "text/event-stream"},
                                    {"Content-type", "application/x-ndjson"}},
                                   "{}");
  EXPECT_EQ(out,
            "POST /x HTTP/1.1\r\n"
            "Host: h\r\n"
            "user-agent: mine/2\r\n"
            "ACCEPT: text/event-stream\r\n"
            "Content-type: application/x-ndjson\r\n"
            "Content-Length: 2\r\n"
            "\r\n"
            "{}");
}

TEST(RequestWriter, ValuesAreTrimmedAndEmptyValuesAllowed) {
  const std::string out = write_ok("GET", "https://h/", {{"X-A", "  spaced\t "}, {"X-Empty", ""}}, "");
  EXPECT_NE(out.find("\r\nX-A: spaced\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\nX-Empty: \r\n"), std::string::npos);
}

TEST(RequestWriter, EmptyVersionGivesPlainUserAgent) {
  std::string out;
  const Url url = make_url("https://h/");
  ASSERT_EQ(write_request(out, "GET", url, nullptr, 0, "", ""), "");
  EXPECT_NE(out.find("\r\nUser-Agent: barrage\r\n"), std::string::npos);
}

TEST(RequestWriter, OutputIsClearedAndReusable) {
  std::string out(4096, 'x');
  const Url url = make_url("https://h/a");
  ASSERT_EQ(write_request(out, "GET", url, nullptr, 0, "", "1"), "");
  EXPECT_EQ(out.rfind("GET /a HTTP/1.1\r\n", 0), 0u);
  EXPECT_EQ(out.find('x'), std::string::npos);
}

TEST(RequestWriter, RejectsHeaderInjection) {
  EXPECT_NE(write_err({{"X-Foo", "bar\r\nX-Injected: 1"}}).find("CR, LF or NUL"), std::string::npos);
  EXPECT_NE(write_err({{"X-Foo", "bar\nX: 1"}}).find("CR, LF or NUL"), std::string::npos);
  EXPECT_NE(write_err({{"X-Foo", "bar\r"}}).find("CR, LF or NUL"), std::string::npos);
  EXPECT_NE(write_err({{"X-Foo", std::string_view("a\0b", 3)}}).find("CR, LF or NUL"), std::string::npos);
}

TEST(RequestWriter, RejectsNonTokenHeaderNames) {
  EXPECT_EQ(write_err({{"X Foo", "1"}}), "invalid header name 'X Foo'");
  EXPECT_NE(write_err({{"X-Foo:", "1"}}).find("invalid header name"), std::string::npos);
  EXPECT_NE(write_err({{"X-Foo\r\nEvil", "1"}}).find("invalid header name"), std::string::npos);
  EXPECT_NE(write_err({{"", "1"}}).find("invalid header name"), std::string::npos);
  EXPECT_NE(write_err({{"(x)", "1"}}).find("invalid header name"), std::string::npos);
}

TEST(RequestWriter, RejectsManagedHeaders) {
  for (std::string_view name :
       {"Host", "content-length", "Transfer-Encoding", "CONNECTION", "Upgrade", "TE", "te"}) {
    const std::string reason = write_err({{"X-Ok", "1"}, {name, "x"}});
    EXPECT_NE(reason.find("managed by the engine"), std::string::npos) << name;
    EXPECT_NE(reason.find(std::string(name)), std::string::npos) << reason;
  }
  EXPECT_EQ(write_err({{"Host", "evil.example"}}), "header 'Host' is managed by the engine");
}

TEST(RequestWriter, RejectsBadMethods) {
  EXPECT_EQ(write_err({}, ""), "invalid HTTP method");
  EXPECT_EQ(write_err({}, "GET /x HTTP/1.1\r\n"), "invalid HTTP method");
  EXPECT_EQ(write_err({}, "PO ST"), "invalid HTTP method");
  EXPECT_EQ(write_err({}, "POST\n"), "invalid HTTP method");
}

TEST(RequestWriter, CustomTokenMethodAllowed) {
  EXPECT_EQ(write_ok("PROPFIND", "https://h/", {}, "").rfind("PROPFIND / HTTP/1.1\r\n", 0), 0u);
}

TEST(RequestWriter, RejectsHandBuiltUrlWithUnsafeTarget) {
  Url url;
  url.host = "h";
  url.target = "/a b";
  std::string out;
  EXPECT_EQ(write_request(out, "GET", url, nullptr, 0, "", "1"), "invalid character in request target");
  url.target = "";
  EXPECT_EQ(write_request(out, "GET", url, nullptr, 0, "", "1"), "request target must start with '/'");
  Url no_host;
  no_host.target.push_back('/');
  EXPECT_EQ(write_request(out, "GET", no_host, nullptr, 0, "", "1"), "missing host");
}

TEST(RequestWriter, IsHttpToken) {
  EXPECT_TRUE(is_http_token("X-Custom_Header.1~"));
  EXPECT_TRUE(is_http_token("!#$%&'*+-.^_`|~"));
  EXPECT_FALSE(is_http_token(""));
  EXPECT_FALSE(is_http_token("a:b"));
  EXPECT_FALSE(is_http_token("a\"b"));
  EXPECT_FALSE(is_http_token("\xff"));
}

TEST(RequestWriter, LargeBodyInOneBuffer) {
  const std::string body(1 << 20, 'z');
  const std::string out = write_ok("POST", "https://h/", {}, body);
  EXPECT_NE(out.find("Content-Length: 1048576\r\n\r\n"), std::string::npos);
  EXPECT_EQ(out.substr(out.size() - body.size()), body);
}

// A released head (a stream that delivered events) gives the same HTTP/2
// fields if an attempt comes after all.
TEST(RequestHead, ReleasedHttp2FieldsAreReadAgainIdentically) {
  RequestHead head;
  const Url url = make_url("https://api.example.com/v1/chat/completions?x=1");
  const std::vector<HeaderView> headers = {{"Authorization", "Bearer k"}, {"X-Trace", "t1"}};
  ASSERT_EQ(head.build("POST", url, headers.data(), headers.size(), "{\"stream\":true}", "0.1.0"), "");
  std::string why;
  ASSERT_TRUE(head.h2_ready(&why)) << why;
  std::vector<std::pair<std::string, std::string>> before;
  for (const HeaderView& f : head.h2_fields()) before.emplace_back(f.name, f.value);
  ASSERT_GE(before.size(), 5u);
  EXPECT_EQ(before[0].first, ":method");

  head.release_h2();
  EXPECT_TRUE(head.h2_fields().empty());
  ASSERT_TRUE(head.h2_ready(&why)) << why;
  std::vector<std::pair<std::string, std::string>> after;
  for (const HeaderView& f : head.h2_fields()) after.emplace_back(f.name, f.value);
  EXPECT_EQ(after, before);
  EXPECT_EQ(head.body(), "{\"stream\":true}");
}

}  // namespace
}  // namespace barrage::http
