// Unit tests for batch/ url_check: the batch library's copy of the URL rules
// must accept and refuse exactly what the engine's parser does (the C ABI
// offers no URL check, so batch/ keeps its own), with the same reasons.
#include <gtest/gtest.h>

#include <string>

#include "batch/url_check.hpp"
#include "http/url.hpp"

namespace barrage {
namespace {

struct Case {
  std::string url;
  bool allow_http;
  bool ok;
};

const Case kCases[] = {
    {"https://api.openai.com/v1/chat/completions", false, true},
    {"https://API.Example.COM:8443/x?y=1#frag", false, true},
    {"HTTPS://api.example.com", false, true},
    {"https://api.example.com:/", false, true},
    {"https://127.0.0.1:9/", false, true},
    {"https://[::1]:8443/v1", false, true},
    {"https://[2001:db8::1]/", false, true},
    {"https://under_score.example/", false, true},
    {"http://127.0.0.1:8080/v1", true, true},
    {"http://127.0.0.1:8080/v1", false, false},
    {"ftp://x/y", false, false},
    {"https://", false, false},
    {"https:///path", false, false},
    {"://x", false, false},
    {"1https://x", false, false},
    {"htt ps://x", false, false},
    {"https://x.example/a b", false, false},
    {"https://caf\xc3\xa9.example/", false, false},
    {"https://user:pw@x.example/", false, false},
    {"https://x.example:0/", false, false},
    {"https://x.example:65536/", false, false},
    {"https://x.example:123456/", false, false},
    {"https://x.example:8a/", false, false},
    {"https://::1/", false, false},
    {"https://[::1/", false, false},
    {"https://[::1]x/", false, false},
    {"https://[]/", false, false},
    {"https://[::g]/", false, false},
    {"https://[::1]:99999/", false, false},
    {"https://127.1/", false, false},
    {"https://1.2.3.4.5.6.7.8/", false, false},
    {"https://.x.example/", false, false},
    {"https://x..example/", false, false},
    {"https://x%41.example/", false, false},
    {"https://" + std::string(254, 'a') + "/", false, false},
    {"https://x.example/" + std::string(8200, 'p'), false, false},
    {"", false, false},
};

TEST(UrlCheck, AgreesWithTheEngineOnEveryCase) {
  for (const Case& c : kCases) {
    std::string ours = check_url(c.url, c.allow_http);
    http::Url parsed;
    std::string engine = http::parse_url(c.url, c.allow_http, parsed);
    EXPECT_EQ(ours.empty(), c.ok) << c.url << " -> " << ours;
    EXPECT_EQ(ours, engine) << c.url;
  }
}

TEST(UrlCheck, ReasonsNameTheDefect) {
  EXPECT_EQ(check_url("https://user@x.example/", false), "userinfo (user:password@) not allowed in URL");
  EXPECT_EQ(check_url("http://x.example/", false), "http:// needs BRG_OPT_ALLOW_HTTP");
  EXPECT_EQ(check_url("gopher://x/", false), "unsupported scheme 'gopher' (only https)");
  EXPECT_EQ(check_url("https://x.example:0/", false), "bad port");
}

}  // namespace
}  // namespace barrage
