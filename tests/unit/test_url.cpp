// Unit tests for engine/http/url: what parse_url accepts, how it normalises,
// and the reasons it gives for what it refuses.
#include "http/url.hpp"

#include <gtest/gtest.h>

#include <string>

namespace barrage::http {
namespace {

Url parse_ok(std::string_view text, bool allow_http = false) {
  Url url;
  const std::string reason = parse_url(text, allow_http, url);
  EXPECT_EQ(reason, "") << text;
  return url;
}

std::string parse_err(std::string_view text, bool allow_http = false) {
  Url url;
  url.host = "untouched";
  std::string reason = parse_url(text, allow_http, url);
  EXPECT_NE(reason, "") << text;
  EXPECT_EQ(url.host, "untouched") << "out must not change on failure: " << text;
  return reason;
}

TEST(Url, HttpsDefaults) {
  const Url u = parse_ok("https://api.openai.com/v1/chat/completions");
  EXPECT_EQ(u.scheme, Scheme::https);
  EXPECT_EQ(u.host, "api.openai.com");
  EXPECT_EQ(u.port, 443);
  EXPECT_EQ(u.target, "/v1/chat/completions");
  EXPECT_FALSE(u.host_is_ip);
  EXPECT_FALSE(u.ipv6);
  EXPECT_EQ(u.origin(), "https://api.openai.com:443");
  EXPECT_EQ(u.host_header(), "api.openai.com");
}

TEST(Url, HttpDefaultPortWhenAllowed) {
  const Url u = parse_ok("http://localhost/x", true);
  EXPECT_EQ(u.scheme, Scheme::http);
  EXPECT_EQ(u.port, 80);
  EXPECT_EQ(u.origin(), "http://localhost:80");
  EXPECT_EQ(u.host_header(), "localhost");
}

TEST(Url, ExplicitDefaultPortIsNotRepeatedInHost) {
  const Url u = parse_ok("https://example.com:443/");
  EXPECT_EQ(u.port, 443);
  EXPECT_EQ(u.host_header(), "example.com");
  EXPECT_EQ(u.origin(), parse_ok("https://EXAMPLE.com/").origin());
}

TEST(Url, NonDefaultPortInHostHeader) {
  const Url u = parse_ok("https://example.com:8443/v1");
  EXPECT_EQ(u.port, 8443);
  EXPECT_EQ(u.host_header(), "example.com:8443");
  EXPECT_EQ(u.origin(), "https://example.com:8443");
}

TEST(Url, Ipv4Literal) {
  const Url u = parse_ok("https://127.0.0.1:8080/v1/models");
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, 8080);
  EXPECT_TRUE(u.host_is_ip);
  EXPECT_FALSE(u.ipv6);
  EXPECT_EQ(u.host_header(), "127.0.0.1:8080");
}

TEST(Url, Ipv6LiteralWithPort) {
  const Url u = parse_ok("https://[::1]:8443/v1");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 8443);
  EXPECT_TRUE(u.host_is_ip);
  EXPECT_TRUE(u.ipv6);
  EXPECT_EQ(u.target, "/v1");
  EXPECT_EQ(u.origin(), "https://[::1]:8443");
  EXPECT_EQ(u.host_header(), "[::1]:8443");
}

TEST(Url, Ipv6LiteralDefaultPortAndUppercase) {
  const Url u = parse_ok("https://[2001:DB8::A]");
  EXPECT_EQ(u.host, "2001:db8::a");
  EXPECT_EQ(u.port, 443);
  EXPECT_EQ(u.host_header(), "[2001:db8::a]");
  EXPECT_EQ(u.target, "/");
}

TEST(Url, UppercaseHostAndSchemeAreLowered) {
  const Url u = parse_ok("HTTPS://API.Example.COM/V1/Path");
  EXPECT_EQ(u.scheme, Scheme::https);
  EXPECT_EQ(u.host, "api.example.com");
  EXPECT_EQ(u.target, "/V1/Path") << "the path is case-sensitive and kept";
}

TEST(Url, QueryKeptFragmentDropped) {
  EXPECT_EQ(parse_ok("https://h.example/a/b?x=1&y=%20z#frag").target, "/a/b?x=1&y=%20z");
  EXPECT_EQ(parse_ok("https://h.example/a#frag?notquery").target, "/a");
  EXPECT_EQ(parse_ok("https://h.example#frag").target, "/");
}

TEST(Url, EmptyPathBecomesSlash) {
  EXPECT_EQ(parse_ok("https://h.example").target, "/");
  EXPECT_EQ(parse_ok("https://h.example:444").target, "/");
  EXPECT_EQ(parse_ok("https://h.example?q=1").target, "/?q=1");
}

TEST(Url, EmptyPortMeansDefault) {
  const Url u = parse_ok("https://h.example:/x");
  EXPECT_EQ(u.port, 443);
}

TEST(Url, RejectsOtherSchemes) {
  EXPECT_EQ(parse_err("ftp://example.com/file"), "unsupported scheme 'ftp' (only https)");
  EXPECT_EQ(parse_err("wss://example.com/"), "unsupported scheme 'wss' (only https)");
  EXPECT_NE(parse_err("example.com/v1").find("scheme"), std::string::npos);
  EXPECT_NE(parse_err("://example.com/").find("scheme"), std::string::npos);
}

TEST(Url, RejectsHttpWithoutOptIn) {
  EXPECT_EQ(parse_err("http://example.com/"), "http:// needs BRG_OPT_ALLOW_HTTP");
}

TEST(Url, RejectsMissingHost) {
  EXPECT_EQ(parse_err("https:///v1"), "missing host");
  EXPECT_EQ(parse_err("https://"), "missing host");
  EXPECT_EQ(parse_err("https://:443/"), "missing host");
  EXPECT_EQ(parse_err("https://[]:443/"), "missing host");
}

TEST(Url, RejectsBadPorts) {
  EXPECT_EQ(parse_err("https://example.com:0/"), "bad port");
  EXPECT_EQ(parse_err("https://example.com:70000/"), "bad port");
  EXPECT_EQ(parse_err("https://example.com:65536/"), "bad port");
  EXPECT_EQ(parse_err("https://example.com:12a/"), "bad port");
  EXPECT_EQ(parse_err("https://example.com:-1/"), "bad port");
  EXPECT_EQ(parse_err("https://example.com:0000000443/"), "bad port");
  EXPECT_EQ(parse_ok("https://example.com:65535/").port, 65535);
}

TEST(Url, RejectsSpacesAndControlCharacters) {
  EXPECT_EQ(parse_err("https://example.com/a b"), "invalid character in URL");
  EXPECT_EQ(parse_err(" https://example.com/"), "invalid character in URL");
  EXPECT_EQ(parse_err("https://example.com/\r\nX-Injected: 1"), "invalid character in URL");
  EXPECT_EQ(parse_err(std::string_view("https://example.com/\0", 21)), "invalid character in URL");
  EXPECT_EQ(parse_err("https://ex\xc3\xa4mple.com/"), "invalid character in URL");
}

TEST(Url, RejectsUserinfo) {
  EXPECT_NE(parse_err("https://user:secret@example.com/").find("userinfo"), std::string::npos);
  EXPECT_NE(parse_err("https://@example.com/").find("userinfo"), std::string::npos);
  // An '@' in the path is not userinfo.
  EXPECT_EQ(parse_ok("https://example.com/a@b").target, "/a@b");
}

TEST(Url, RejectsBadHosts) {
  EXPECT_EQ(parse_err("https://exa_mple.com%2f/"), "invalid character in host");
  EXPECT_EQ(parse_err("https://exa!mple.com/"), "invalid character in host");
  EXPECT_EQ(parse_err("https://::1/"), "IPv6 address must be in brackets");
  EXPECT_EQ(parse_err("https://[::1/"), "unterminated IPv6 address");
  EXPECT_EQ(parse_err("https://[not-ipv6]/"), "invalid IPv6 address");
  EXPECT_EQ(parse_err("https://[::1]x/"), "invalid character after IPv6 address");
  EXPECT_EQ(parse_err("https://256.1.1.1/"), "invalid IPv4 address");
  EXPECT_EQ(parse_err("https://127.1/"), "invalid IPv4 address");
  EXPECT_EQ(parse_err("https://a..b/"), "invalid host name");
  EXPECT_EQ(parse_err("https://" + std::string(254, 'a') + "/"), "host name too long");
}

TEST(Url, LengthLimit) {
  std::string url = "https://example.com/";
  url.append(kMaxUrlBytes - url.size(), 'a');
  EXPECT_EQ(parse_ok(url).target.size(), kMaxUrlBytes - 19);
  url.push_back('a');
  EXPECT_EQ(parse_err(url), "URL longer than 8192 bytes");
}

TEST(Url, RejectsEmpty) { EXPECT_EQ(parse_err(""), "empty URL"); }

TEST(Url, ReusedOutputIsFullyOverwritten) {
  Url u = parse_ok("https://[::1]:9000/a?b");
  EXPECT_EQ(parse_url("http://example.com", true, u), "");
  EXPECT_EQ(u.scheme, Scheme::http);
  EXPECT_EQ(u.host, "example.com");
  EXPECT_EQ(u.port, 80);
  EXPECT_EQ(u.target, "/");
  EXPECT_FALSE(u.host_is_ip);
  EXPECT_FALSE(u.ipv6);
}

}  // namespace
}  // namespace barrage::http
