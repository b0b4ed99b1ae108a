// HTTPS proxy settings: the parsed value of HTTPS_PROXY (an http:// proxy
// reached by CONNECT) and the NO_PROXY list deciding which hosts go direct.
// Sans-I/O: the caller reads the environment and passes the two strings.
//
// Choices, where tools disagree:
// - The proxy port must be written. curl assumes 1080 for "http://host",
//   Python requests and Go assume 80; a silent guess would send traffic to a
//   port the user did not mean, so parse() says so instead.
// - NO_PROXY follows curl: comma- or blank-separated entries, matched
//   case-insensitively as the host itself or a parent domain ("example.com"
//   and ".example.com" both match "example.com" and "api.example.com");
//   IP literals and CIDR blocks ("10.0.0.0/8", "::1/128") match IP-literal
//   hosts only, never names. "localhost" is NOT bypassed unless listed,
//   exactly as in curl. Additions: an entry "*" anywhere in the list
//   bypasses everything (curl: only when the whole value is "*"); "*.x.com"
//   means ".x.com"; "host:port" and "[v6]:port" restrict an entry to one port
//   (as Python's urllib does).
// - Malformed NO_PROXY entries (bad CIDR length, bad port, characters no
//   host name has) are reported rather than skipped, so a typo cannot
//   silently send traffic through the proxy. A NO_PROXY value is not even
//   looked at when no proxy is set.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace barrage {

struct ProxyConfig {
 public:
  // Parses HTTPS_PROXY (proxy_url) and NO_PROXY (no_proxy). Accepted proxy
  // forms: "http://host:port", "host:port", "http://user:pass@host:port"
  // (percent-decoded, sent as Proxy-Authorization: Basic), "[::1]:3128",
  // optionally with a trailing "/". An empty or blank proxy_url means "no
  // proxy" and succeeds. Returns "" on success, else a message starting with
  // "HTTPS_PROXY: " or "NO_PROXY: " that never contains the credentials.
  // `*out` is written only on success. Never throws.
  static std::string parse(std::string_view proxy_url, std::string_view no_proxy, ProxyConfig* out);

  bool is_set() const noexcept { return !host_.empty(); }
  // Lowercased; IPv6 without brackets. Empty when no proxy is set.
  const std::string& host() const noexcept { return host_; }
  uint16_t port() const noexcept { return port_; }
  bool host_is_ipv6() const noexcept { return ipv6_; }
  // The full header value ("Basic dXNlcjpwYXNz"), or "" without credentials.
  // Secret: never log it or put it in a message.
  const std::string& proxy_authorization() const noexcept { return authorization_; }
  // "proxy 127.0.0.1:3128" / "proxy [::1]:3128" for messages and logs;
  // never mentions credentials. "no proxy" when unset.
  std::string redacted() const;

  // True when a request to host:port must not use the proxy (also true for
  // every host when no proxy is set). `host` as in a URL: case-insensitive,
  // IPv6 with or without brackets, a trailing dot ignored.
  bool bypass(std::string_view host, uint16_t port) const noexcept;

 private:
  struct Entry {
    enum class Kind : uint8_t { name, ipv4, ipv6 };
    Kind kind = Kind::name;
    uint8_t prefix_bits = 0;  // CIDR length; 32/128 for a single address
    uint16_t port = 0;        // 0: any port
    uint8_t addr[16] = {};    // network byte order (ipv4 uses the first 4)
    std::string name;         // lowercased, no leading or trailing dot
  };

  static std::string parse_proxy_url(std::string_view text, ProxyConfig& cfg);
  static std::string parse_no_proxy(std::string_view text, ProxyConfig& cfg);
  static std::string parse_entry(std::string_view token, ProxyConfig& cfg);

  std::string host_;
  uint16_t port_ = 0;
  bool ipv6_ = false;
  std::string authorization_;
  bool bypass_all_ = false;
  std::vector<Entry> entries_;
};

}  // namespace barrage
