// URL check (see url_check.hpp). Stricter than a browser, as the engine is:
// userinfo, raw spaces or non-ASCII bytes, unbracketed IPv6 and shorthand
// numeric hosts are refused rather than guessed at.
#include "batch/url_check.hpp"

#include <arpa/inet.h>

namespace barrage {
namespace {

constexpr size_t kMaxUrlBytes = 8192;

constexpr bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
// Host names must already be punycode: no percent-encoding, no UTF-8.
constexpr bool is_host_char(char c) noexcept { return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_'; }

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = char(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = char(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// An empty port ("host:/") means the scheme's default, as RFC 3986 allows.
bool port_ok(std::string_view text) {
  if (text.empty()) return true;
  if (text.size() > 5) return false;
  unsigned value = 0;
  for (char c : text) {
    if (!is_digit(c)) return false;
    value = value * 10 + unsigned(c - '0');
  }
  return value >= 1 && value <= 65535;
}

// inet_pton needs a NUL-terminated copy.
bool is_address(int family, std::string_view text) {
  char buf[64];
  if (text.size() >= sizeof buf) return false;
  text.copy(buf, text.size());
  buf[text.size()] = '\0';
  unsigned char addr[16];
  return inet_pton(family, buf, addr) == 1;
}

std::string check_host(std::string_view authority) {
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return "unterminated IPv6 address";
    std::string_view host = authority.substr(1, close - 1), after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return "invalid character after IPv6 address";
    if (host.empty()) return "missing host";
    if (!is_address(AF_INET6, host)) return "invalid IPv6 address";
    return port_ok(after.empty() ? after : after.substr(1)) ? "" : "bad port";
  }
  size_t colon = authority.find(':');
  std::string_view host = authority.substr(0, colon), port;
  if (colon != std::string_view::npos) {
    port = authority.substr(colon + 1);
    if (port.find(':') != std::string_view::npos) return "IPv6 address must be in brackets";
  }
  if (host.empty()) return "missing host";
  if (host.size() > 253) return "host name too long";
  bool numeric = true;
  for (char c : host) {
    if (!is_host_char(c)) return "invalid character in host";
    if (!is_digit(c) && c != '.') numeric = false;
  }
  if (host.front() == '.' || host.find("..") != std::string_view::npos) return "invalid host name";
  // All digits and dots must be a dotted quad: libraries read "127.1" differently.
  if (numeric && (host.size() >= 16 || !is_address(AF_INET, host))) return "invalid IPv4 address";
  return port_ok(port) ? "" : "bad port";
}

}  // namespace

std::string check_url(std::string_view text, bool allow_http) {
  if (text.size() > kMaxUrlBytes) return "URL longer than 8192 bytes";
  if (text.empty()) return "empty URL";
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f) return "invalid character in URL";
  }
  size_t sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0 || !is_alpha(text[0])) return "missing scheme (expected https://)";
  std::string_view scheme = text.substr(0, sep);
  for (char c : scheme)
    if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') return "missing scheme (expected https://)";
  if (iequals(scheme, "http")) {
    if (!allow_http) return "http:// needs BRG_OPT_ALLOW_HTTP";
  } else if (!iequals(scheme, "https")) {
    return "unsupported scheme '" + std::string(scheme.substr(0, 32)) + "' (only https)";
  }
  std::string_view rest = text.substr(sep + 3);
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  // Credentials belong in headers, not in a URL that ends up in error texts.
  if (authority.find('@') != std::string_view::npos) return "userinfo (user:password@) not allowed in URL";
  if (authority.empty()) return "missing host";
  return check_host(authority);
}

}  // namespace barrage
