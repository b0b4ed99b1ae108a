// Unit tests for engine/net/proxy_config: the HTTPS_PROXY forms we accept,
// credentials and their redaction, the errors for what we refuse, and the
// curl-style NO_PROXY matching (names, IP literals, CIDR, ports, "*").
#include "net/proxy_config.hpp"

#include <gtest/gtest.h>

#include <string>

namespace barrage {
namespace {

ProxyConfig parse_ok(std::string_view url, std::string_view no_proxy = "") {
  ProxyConfig cfg;
  const std::string err = ProxyConfig::parse(url, no_proxy, &cfg);
  EXPECT_EQ(err, "") << url << " / " << no_proxy;
  return cfg;
}

std::string parse_err(std::string_view url, std::string_view no_proxy = "") {
  ProxyConfig cfg = parse_ok("http://untouched:1");
  const std::string err = ProxyConfig::parse(url, no_proxy, &cfg);
  EXPECT_NE(err, "") << url << " / " << no_proxy;
  EXPECT_EQ(cfg.host(), "untouched") << "out must not change on failure: " << url;
  return err;
}

// NO_PROXY with a valid proxy, for the matching tests.
ProxyConfig with_no_proxy(std::string_view no_proxy) { return parse_ok("http://proxy.corp:3128", no_proxy); }

// --- HTTPS_PROXY forms ---------------------------------------------------

TEST(ProxyConfig, EmptyMeansNoProxyAndEverythingGoesDirect) {
  for (std::string_view url : {"", "   ", "\t\n"}) {
    const ProxyConfig cfg = parse_ok(url);
    EXPECT_FALSE(cfg.is_set());
    EXPECT_TRUE(cfg.bypass("api.openai.com", 443));
    EXPECT_EQ(cfg.redacted(), "no proxy");
  }
}

TEST(ProxyConfig, NoProxyIsIgnoredWithoutAProxy) {
  // A value meant for other tools must not stop the engine from starting.
  const ProxyConfig cfg = parse_ok("", "10.0.0.0/99, <local>");
  EXPECT_FALSE(cfg.is_set());
}

TEST(ProxyConfig, HttpUrl) {
  const ProxyConfig cfg = parse_ok("http://127.0.0.1:3128");
  EXPECT_TRUE(cfg.is_set());
  EXPECT_EQ(cfg.host(), "127.0.0.1");
  EXPECT_EQ(cfg.port(), 3128);
  EXPECT_FALSE(cfg.host_is_ipv6());
  EXPECT_EQ(cfg.proxy_authorization(), "");
  EXPECT_EQ(cfg.redacted(), "proxy 127.0.0.1:3128");
  EXPECT_FALSE(cfg.bypass("api.openai.com", 443));
}

TEST(ProxyConfig, SchemeDefaultsToHttp) {
  const ProxyConfig cfg = parse_ok("proxy.corp:8080");
  EXPECT_EQ(cfg.host(), "proxy.corp");
  EXPECT_EQ(cfg.port(), 8080);
}

TEST(ProxyConfig, SchemeAndHostAreCaseInsensitiveAndTrailingSlashIsFine) {
  const ProxyConfig cfg = parse_ok("  HTTP://Proxy.CORP:8080/  ");
  EXPECT_EQ(cfg.host(), "proxy.corp");
  EXPECT_EQ(cfg.port(), 8080);
  EXPECT_EQ(cfg.redacted(), "proxy proxy.corp:8080");
}

TEST(ProxyConfig, BracketedIpv6) {
  for (std::string_view url : {"http://[::1]:3128", "[::1]:3128"}) {
    const ProxyConfig cfg = parse_ok(url);
    EXPECT_EQ(cfg.host(), "::1");
    EXPECT_TRUE(cfg.host_is_ipv6());
    EXPECT_EQ(cfg.port(), 3128);
    EXPECT_EQ(cfg.redacted(), "proxy [::1]:3128");
  }
  EXPECT_EQ(parse_ok("http://[2001:DB8::1]:1").host(), "2001:db8::1");
}

// --- credentials -----------------------------------------------------------

TEST(ProxyConfig, CredentialsBecomeBasicAuthorization) {
  // RFC 7617's example.
  const ProxyConfig cfg = parse_ok("http://Aladdin:open%20sesame@proxy.corp:3128");
  EXPECT_EQ(cfg.proxy_authorization(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
  EXPECT_EQ(cfg.host(), "proxy.corp");
  EXPECT_EQ(cfg.port(), 3128);
}

TEST(ProxyConfig, CredentialsArePercentDecoded) {
  EXPECT_EQ(parse_ok("http://user:p%40ss%3Aword@proxy:1").proxy_authorization(), "Basic dXNlcjpwQHNzOndvcmQ=");
  // Non-ASCII bytes pass through as UTF-8 ("usér").
  EXPECT_EQ(parse_ok("http://us%C3%A9r:pw@proxy:1").proxy_authorization(), "Basic dXPDqXI6cHc=");
}

TEST(ProxyConfig, UnencodedAtSignInPasswordUsesTheLastAt) {
  EXPECT_EQ(parse_ok("http://user:p@ss@proxy:1").proxy_authorization(), "Basic dXNlcjpwQHNz");
  EXPECT_EQ(parse_ok("user:p@ss@proxy:1").proxy_authorization(), "Basic dXNlcjpwQHNz");
}

TEST(ProxyConfig, UserWithoutPasswordOrPasswordWithoutUser) {
  EXPECT_EQ(parse_ok("http://user@proxy:1").proxy_authorization(), "Basic dXNlcjo=");
  EXPECT_EQ(parse_ok("http://:secret@proxy:1").proxy_authorization(), "Basic OnNlY3JldA==");
  EXPECT_EQ(parse_ok("http://@proxy:1").proxy_authorization(), "");
  EXPECT_EQ(parse_ok("http://:@proxy:1").proxy_authorization(), "");
}

TEST(ProxyConfig, RedactedNeverShowsCredentials) {
  const ProxyConfig cfg = parse_ok("http://alice:s3cret@[::1]:3128");
  EXPECT_EQ(cfg.redacted(), "proxy [::1]:3128");
}

TEST(ProxyConfig, ErrorsNeverShowCredentials) {
  for (std::string_view url : {
           "http://alice:s3cret@proxy",             // missing port
           "http://alice:s3cret@proxy:99999",       // bad port
           "http://alice:s3cret@proxy:x1",          // bad port, not a number
           "http://alice:s3cret%zz@proxy:1",        // bad percent-encoding
           "http://alice:s3cret%0a@proxy:1",        // control character
           "http://alice:s3cret@proxy:1/path",      // path
           "http://alice:s3cret@pro!xy:1",          // bad host
           "http://alice:s3cret@[::1:1",            // unterminated IPv6
           "alice:s3cret://proxy:1",                // looks like a scheme, is not one
           "socks5://alice:s3cret@proxy:1080",      // unsupported scheme
       }) {
    const std::string err = parse_err(url);
    EXPECT_EQ(err.find("s3cret"), std::string::npos) << err;
    EXPECT_EQ(err.find("alice"), std::string::npos) << err;
    EXPECT_EQ(err.rfind("HTTPS_PROXY: ", 0), 0u) << err;
  }
}

// --- refused proxy URLs ----------------------------------------------------

TEST(ProxyConfig, UnsupportedSchemes) {
  EXPECT_EQ(parse_err("socks5://proxy:1080"), "HTTPS_PROXY: unsupported scheme 'socks5' (only http:// proxies)");
  EXPECT_EQ(parse_err("socks5h://proxy:1080"), "HTTPS_PROXY: unsupported scheme 'socks5h' (only http:// proxies)");
  EXPECT_EQ(parse_err("ftp://proxy:21"), "HTTPS_PROXY: unsupported scheme 'ftp' (only http:// proxies)");
}

TEST(ProxyConfig, HttpsProxyIsRefusedClearly) {
  const std::string err = parse_err("https://proxy.corp:443");
  EXPECT_NE(err.find("https:// proxies (TLS to the proxy) are not supported"), std::string::npos) << err;
  EXPECT_NE(parse_err("HTTPS://proxy.corp:443").find("not supported"), std::string::npos);
}

TEST(ProxyConfig, PortIsRequired) {
  for (std::string_view url : {"http://proxy.corp", "http://proxy.corp:", "proxy.corp", "http://[::1]"}) {
    const std::string err = parse_err(url);
    EXPECT_NE(err.find("missing proxy port"), std::string::npos) << url << ": " << err;
  }
}

TEST(ProxyConfig, BadPorts) {
  EXPECT_EQ(parse_err("http://proxy:0"), "HTTPS_PROXY: bad proxy port '0' (expected 1 to 65535)");
  EXPECT_EQ(parse_err("http://proxy:65536"), "HTTPS_PROXY: bad proxy port '65536' (expected 1 to 65535)");
  EXPECT_EQ(parse_err("http://proxy:80a"), "HTTPS_PROXY: bad proxy port (not a number from 1 to 65535)");
  EXPECT_EQ(parse_err("http://proxy:-1"), "HTTPS_PROXY: bad proxy port (not a number from 1 to 65535)");
  EXPECT_EQ(parse_ok("http://proxy:65535").port(), 65535);
  EXPECT_EQ(parse_ok("http://proxy:1").port(), 1);
}

TEST(ProxyConfig, BadHosts) {
  EXPECT_EQ(parse_err("http://:3128"), "HTTPS_PROXY: missing proxy host");
  EXPECT_EQ(parse_err("http://[]:3128"), "HTTPS_PROXY: invalid IPv6 address");
  EXPECT_EQ(parse_err("http://[::1:3128"), "HTTPS_PROXY: unterminated IPv6 address");
  EXPECT_EQ(parse_err("http://[zz::1]:3128"), "HTTPS_PROXY: invalid IPv6 address");
  EXPECT_EQ(parse_err("http://[::1]x:3128"), "HTTPS_PROXY: invalid character after IPv6 address");
  EXPECT_EQ(parse_err("http://::1:3128"), "HTTPS_PROXY: IPv6 address must be in brackets (http://[::1]:3128)");
  EXPECT_EQ(parse_err("http://300.1.1.1:3128"), "HTTPS_PROXY: invalid IPv4 address");
  EXPECT_EQ(parse_err("http://127.1:3128"), "HTTPS_PROXY: invalid IPv4 address");
  EXPECT_EQ(parse_err("http://pro_xy..corp:3128"), "HTTPS_PROXY: invalid proxy host name");
  EXPECT_EQ(parse_err("http://pro xy:3128"), "HTTPS_PROXY: invalid character in proxy URL");
  EXPECT_EQ(parse_err("http://proxy\x01:3128"), "HTTPS_PROXY: invalid character in proxy URL");
  // A NUL inside an IPv6 literal is refused, not read up to the NUL.
  static constexpr char kNulHost[] = "http://[::\0\r\nX: 1]:3128";
  EXPECT_NE(parse_err(std::string_view(kNulHost, sizeof kNulHost - 1)), "");
}

TEST(ProxyConfig, PathQueryFragmentRefused) {
  for (std::string_view url : {"http://proxy:1/x", "http://proxy:1?a", "http://proxy:1#f", "http://proxy:1//"}) {
    EXPECT_NE(parse_err(url).find("unexpected path"), std::string::npos) << url;
  }
}

TEST(ProxyConfig, BadCredentials) {
  EXPECT_EQ(parse_err("http://us%3Aer:pw@proxy:1"), "HTTPS_PROXY: proxy user name contains ':'");
  EXPECT_EQ(parse_err("http://user:pw%0d@proxy:1"), "HTTPS_PROXY: control character in proxy credentials");
  EXPECT_EQ(parse_err("http://user:pw%@proxy:1"), "HTTPS_PROXY: invalid percent-encoding in proxy credentials");
  EXPECT_EQ(parse_err("http://user:pw%4@proxy:1"), "HTTPS_PROXY: invalid percent-encoding in proxy credentials");
  EXPECT_EQ(parse_err("http://us%g0er@proxy:1"), "HTTPS_PROXY: invalid percent-encoding in proxy credentials");
  const std::string long_user(5000, 'u');
  EXPECT_EQ(parse_err("http://" + long_user + ":pw@proxy:1"), "HTTPS_PROXY: proxy credentials longer than 4096 bytes");
}

TEST(ProxyConfig, OversizeValues) {
  EXPECT_EQ(parse_err("http://" + std::string(9000, 'a') + ":1"), "HTTPS_PROXY: longer than 8192 bytes");
  EXPECT_EQ(parse_err("http://proxy:1", std::string(70000, 'a')), "NO_PROXY: longer than 65536 bytes");
}

TEST(ProxyConfig, NullOutput) { EXPECT_NE(ProxyConfig::parse("http://proxy:1", "", nullptr), ""); }

// --- NO_PROXY: names ---------------------------------------------------------

TEST(NoProxy, LocalhostIsNotImplicit) {
  // As in curl: loopback goes through the proxy unless NO_PROXY says otherwise.
  const ProxyConfig cfg = with_no_proxy("");
  EXPECT_FALSE(cfg.bypass("localhost", 80));
  EXPECT_FALSE(cfg.bypass("127.0.0.1", 80));
  EXPECT_FALSE(cfg.bypass("::1", 80));
}

TEST(NoProxy, DomainMatchesItselfAndSubdomains) {
  for (std::string_view entry : {"example.com", ".example.com", "*.example.com", "example.com.", "EXAMPLE.Com"}) {
    const ProxyConfig cfg = with_no_proxy(entry);
    EXPECT_TRUE(cfg.bypass("example.com", 443)) << entry;
    EXPECT_TRUE(cfg.bypass("api.example.com", 443)) << entry;
    EXPECT_TRUE(cfg.bypass("a.b.Example.COM", 443)) << entry;
    EXPECT_TRUE(cfg.bypass("api.example.com.", 443)) << entry;  // fully qualified
    EXPECT_FALSE(cfg.bypass("notexample.com", 443)) << entry;
    EXPECT_FALSE(cfg.bypass("example.com.evil.net", 443)) << entry;
    EXPECT_FALSE(cfg.bypass("example.co", 443)) << entry;
    EXPECT_FALSE(cfg.bypass("com", 443)) << entry;
  }
}

TEST(NoProxy, SeparatorsAreCommasAndBlanks) {
  const ProxyConfig cfg = with_no_proxy(" a.com, b.com\tc.com,,d.com ,\n e.com ");
  for (std::string_view host : {"a.com", "b.com", "c.com", "d.com", "e.com"}) EXPECT_TRUE(cfg.bypass(host, 1)) << host;
  EXPECT_FALSE(cfg.bypass("f.com", 1));
}

TEST(NoProxy, StarBypassesEverything) {
  for (std::string_view value : {"*", " * ", "example.com, *"}) {
    const ProxyConfig cfg = with_no_proxy(value);
    EXPECT_TRUE(cfg.bypass("api.openai.com", 443)) << value;
    EXPECT_TRUE(cfg.bypass("10.1.2.3", 443)) << value;
    EXPECT_TRUE(cfg.bypass("::1", 443)) << value;
  }
}

TEST(NoProxy, NamesDoNotMatchIpHostsAndIpsDoNotMatchNames) {
  const ProxyConfig cfg = with_no_proxy("localhost, 127.0.0.1");
  EXPECT_TRUE(cfg.bypass("localhost", 80));
  EXPECT_TRUE(cfg.bypass("127.0.0.1", 80));
  EXPECT_FALSE(cfg.bypass("127.0.0.2", 80));
  EXPECT_FALSE(cfg.bypass("::1", 80));
  EXPECT_FALSE(cfg.bypass("", 80));
}

// --- NO_PROXY: IP literals and CIDR -------------------------------------------

TEST(NoProxy, Ipv4ExactAndCidr) {
  const ProxyConfig cfg = with_no_proxy("192.168.1.5, 10.0.0.0/8, 172.16.0.0/12, 100.64.1.7/31");
  EXPECT_TRUE(cfg.bypass("192.168.1.5", 443));
  EXPECT_FALSE(cfg.bypass("192.168.1.50", 443));
  EXPECT_TRUE(cfg.bypass("10.0.0.0", 443));
  EXPECT_TRUE(cfg.bypass("10.255.255.255", 443));
  EXPECT_FALSE(cfg.bypass("11.0.0.1", 443));
  EXPECT_TRUE(cfg.bypass("172.16.0.1", 443));
  EXPECT_TRUE(cfg.bypass("172.31.255.255", 443));
  EXPECT_FALSE(cfg.bypass("172.32.0.0", 443));
  EXPECT_FALSE(cfg.bypass("172.15.255.255", 443));
  EXPECT_TRUE(cfg.bypass("100.64.1.6", 443));  // host bits in the entry are masked off
  EXPECT_TRUE(cfg.bypass("100.64.1.7", 443));
  EXPECT_FALSE(cfg.bypass("100.64.1.8", 443));
  EXPECT_FALSE(cfg.bypass("10.example.com", 443));
}

TEST(NoProxy, Ipv4EntryWithHostBitsIsItsNetwork) {
  const ProxyConfig cfg = with_no_proxy("10.1.2.3/8");
  EXPECT_TRUE(cfg.bypass("10.200.0.1", 443));
}

TEST(NoProxy, ZeroPrefixMatchesAllOfOneFamily) {
  const ProxyConfig v4 = with_no_proxy("0.0.0.0/0");
  EXPECT_TRUE(v4.bypass("8.8.8.8", 53));
  EXPECT_FALSE(v4.bypass("::1", 53));
  EXPECT_FALSE(v4.bypass("example.com", 53));
  const ProxyConfig v6 = with_no_proxy("::/0");
  EXPECT_TRUE(v6.bypass("2001:db8::1", 53));
  EXPECT_FALSE(v6.bypass("8.8.8.8", 53));
}

TEST(NoProxy, Ipv6ExactAndCidr) {
  const ProxyConfig cfg = with_no_proxy("::1/128, fd00::/8, 2001:db8::/32, [2001:db9::1], fe80::/10");
  EXPECT_TRUE(cfg.bypass("::1", 443));
  EXPECT_TRUE(cfg.bypass("[::1]", 443));  // bracketed hosts are accepted
  EXPECT_FALSE(cfg.bypass("::2", 443));
  EXPECT_TRUE(cfg.bypass("fd12:3456::1", 443));
  EXPECT_FALSE(cfg.bypass("fc00::1", 443));
  EXPECT_TRUE(cfg.bypass("2001:DB8:ffff::1", 443));
  EXPECT_FALSE(cfg.bypass("2001:db7::1", 443));
  EXPECT_TRUE(cfg.bypass("2001:db9::1", 443));
  EXPECT_TRUE(cfg.bypass("2001:db9:0::0:1", 443));  // same address, other spelling
  EXPECT_FALSE(cfg.bypass("2001:db9::2", 443));
  EXPECT_TRUE(cfg.bypass("febf::1", 443));  // /10 boundary inside a byte
  EXPECT_FALSE(cfg.bypass("fec0::1", 443));
  EXPECT_FALSE(cfg.bypass("127.0.0.1", 443));
}

TEST(NoProxy, BracketedIpv6PrefixForms) {
  for (std::string_view entry : {"[fd00::/8]", "[fd00::]/8"}) {
    const ProxyConfig cfg = with_no_proxy(entry);
    EXPECT_TRUE(cfg.bypass("fd00::5", 1)) << entry;
    EXPECT_FALSE(cfg.bypass("fe00::5", 1)) << entry;
  }
}

// --- NO_PROXY: ports ------------------------------------------------------------

TEST(NoProxy, PortRestrictedEntries) {
  const ProxyConfig cfg =
      with_no_proxy("example.com:8443, 10.0.0.0/8:443, [::1]:8080, [fd00::/8]:9000, [fe80::]/10:7000, 1.2.3.4:80");
  EXPECT_TRUE(cfg.bypass("api.example.com", 8443));
  EXPECT_FALSE(cfg.bypass("api.example.com", 443));
  EXPECT_TRUE(cfg.bypass("10.9.9.9", 443));
  EXPECT_FALSE(cfg.bypass("10.9.9.9", 444));
  EXPECT_TRUE(cfg.bypass("::1", 8080));
  EXPECT_FALSE(cfg.bypass("::1", 8081));
  EXPECT_TRUE(cfg.bypass("fd00::1", 9000));
  EXPECT_FALSE(cfg.bypass("fd00::1", 443));
  EXPECT_TRUE(cfg.bypass("fe80::1", 7000));
  EXPECT_FALSE(cfg.bypass("fe80::1", 7001));
  EXPECT_TRUE(cfg.bypass("1.2.3.4", 80));
  EXPECT_FALSE(cfg.bypass("1.2.3.4", 443));
}

TEST(NoProxy, UnbracketedIpv6HasNoPort) {
  // "::1:8080" is the address ::1:8080, not ::1 on port 8080.
  const ProxyConfig cfg = with_no_proxy("::1:8080");
  EXPECT_TRUE(cfg.bypass("::1:8080", 1));
  EXPECT_FALSE(cfg.bypass("::1", 8080));
}

// --- NO_PROXY: refused entries ------------------------------------------------------

TEST(NoProxy, BadEntriesAreReportedWithTheEntry) {
  struct Case {
    const char* value;
    const char* message;
  };
  const Case cases[] = {
      {"10.0.0.0/33", "NO_PROXY: bad CIDR prefix length in entry '10.0.0.0/33'"},
      {"::1/129", "NO_PROXY: bad CIDR prefix length in entry '::1/129'"},
      {"10.0.0.0/", "NO_PROXY: bad CIDR prefix length in entry '10.0.0.0/'"},
      {"10.0.0.0/x", "NO_PROXY: bad CIDR prefix length in entry '10.0.0.0/x'"},
      {"10.0.0.0/0008", "NO_PROXY: bad CIDR prefix length in entry '10.0.0.0/0008'"},
      {"ok.com, example.com/8", "NO_PROXY: CIDR prefix on a host name in entry 'example.com/8'"},
      {"example.com:0", "NO_PROXY: bad port in entry 'example.com:0'"},
      {"example.com:99999", "NO_PROXY: bad port in entry 'example.com:99999'"},
      {"example.com:", "NO_PROXY: bad port in entry 'example.com:'"},
      {"[::1]:x", "NO_PROXY: bad port in entry '[::1]:x'"},
      {"[::1", "NO_PROXY: unterminated '[' in entry '[::1'"},
      {"[::1]x", "NO_PROXY: unexpected text after ']' in entry '[::1]x'"},
      {"[zz::1]", "NO_PROXY: invalid IPv6 address in entry '[zz::1]'"},
      {"[1.2.3.4]", "NO_PROXY: invalid IPv6 address in entry '[1.2.3.4]'"},
      {"[fd00::/8]/8", "NO_PROXY: two CIDR prefixes in entry '[fd00::/8]/8'"},
      {"a*b.com", "NO_PROXY: '*' allowed only alone or as a leading '*.' in entry 'a*b.com'"},
      {"**", "NO_PROXY: '*' allowed only alone or as a leading '*.' in entry '**'"},
      {"<local>", "NO_PROXY: invalid host name in entry '<local>'"},
      {"a..com", "NO_PROXY: invalid host name in entry 'a..com'"},
      {".", "NO_PROXY: invalid host name in entry '.'"},
      {":443", "NO_PROXY: invalid host name in entry ':443'"},
      {"1.2.3", "NO_PROXY: invalid IPv4 address in entry '1.2.3'"},
  };
  for (const Case& c : cases) EXPECT_EQ(parse_err("http://proxy:1", c.value), c.message) << c.value;
}

TEST(NoProxy, LongBadEntryIsCutInTheMessage) {
  const std::string entry = std::string(100, 'a') + "/8";
  const std::string err = parse_err("http://proxy:1", entry);
  EXPECT_EQ(err, "NO_PROXY: CIDR prefix on a host name in entry '" + std::string(64, 'a') + "...'");
}

}  // namespace
}  // namespace barrage
