// Absolute URL parsing. Deliberately stricter than a browser: anything a
// server could read differently from us (userinfo, raw spaces, unbracketed
// IPv6, odd numeric hosts) is refused with a reason instead of guessed at.
#include "http/ascii.hpp"
#include "http/url.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace barrage::http {
namespace {


constexpr bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// reg-name characters we accept in a host name. Percent-encoded and
// non-ASCII (IDN) names must be converted to punycode by the caller.
constexpr bool is_host_char(char c) noexcept {
  return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_';
}

std::string parse_port(std::string_view text, uint16_t& port) {
  // An empty port ("host:/") means the default, as RFC 3986 allows.
  if (text.empty()) return {};
  if (text.size() > 5) return "bad port";
  unsigned value = 0;
  for (char c : text) {
    if (!is_digit(c)) return "bad port";
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value == 0 || value > 65535) return "bad port";
  port = static_cast<uint16_t>(value);
  return {};
}

}  // namespace

void Url::append_host_header(std::string& out) const {
  if (ipv6) out.push_back('[');
  out.append(host);
  if (ipv6) out.push_back(']');
  if (port != default_port()) {
    char buf[8];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, port);
    (void)ec;
    out.push_back(':');
    out.append(buf, end);
  }
}

std::string Url::host_header() const {
  std::string out;
  out.reserve(host.size() + 8);
  append_host_header(out);
  return out;
}

std::string Url::origin() const {
  std::string out;
  out.reserve(host.size() + 16);
  out.append(scheme == Scheme::https ? "https://" : "http://");
  if (ipv6) out.push_back('[');
  out.append(host);
  if (ipv6) out.push_back(']');
  out.push_back(':');
  char buf[8];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, port);
  (void)ec;
  out.append(buf, end);
  return out;
}

std::string parse_url(std::string_view text, bool allow_http, Url& out) {
  if (text.size() > kMaxUrlBytes) return "URL longer than 8192 bytes";
  if (text.empty()) return "empty URL";
  // Bytes that would corrupt the request line or that servers disagree on
  // are refused outright; callers percent-encode them.
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f) return "invalid character in URL";
  }

  Url url;
  const size_t sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0) return "missing scheme (expected https://)";
  const std::string_view scheme = text.substr(0, sep);
  if (!is_alpha(scheme[0])) return "missing scheme (expected https://)";
  for (char c : scheme) {
    if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.') {
      return "missing scheme (expected https://)";
    }
  }
  if (iequals(scheme, "https")) {
    url.scheme = Scheme::https;
    url.port = 443;
  } else if (iequals(scheme, "http")) {
    if (!allow_http) return "http:// needs BRG_OPT_ALLOW_HTTP";
    url.scheme = Scheme::http;
    url.port = 80;
  } else {
    std::string reason = "unsupported scheme '";
    reason.append(scheme.substr(0, 32));
    reason.append("' (only https)");
    return reason;
  }

  std::string_view rest = text.substr(sep + 3);
  const size_t auth_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, auth_end);
  std::string_view tail = auth_end == std::string_view::npos ? std::string_view{} : rest.substr(auth_end);

  // Credentials in the URL would end up in logs and errors; headers are the
  // place for them.
  if (authority.find('@') != std::string_view::npos) return "userinfo (user:password@) not allowed in URL";
  if (authority.empty()) return "missing host";

  std::string_view host;
  std::string_view port_text;
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return "unterminated IPv6 address";
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return "invalid character after IPv6 address";
      port_text = after.substr(1);
    }
    if (host.empty()) return "missing host";
    // Zone ids (fe80::1%25eth0) are not supported: inet_pton rejects them.
    char buf[64];
    if (host.size() >= sizeof buf) return "invalid IPv6 address";
    host.copy(buf, host.size());
    buf[host.size()] = '\0';
    in6_addr addr;
    if (inet_pton(AF_INET6, buf, &addr) != 1) return "invalid IPv6 address";
    url.host_is_ip = true;
    url.ipv6 = true;
  } else {
    const size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.find(':') != std::string_view::npos) return "IPv6 address must be in brackets";
    }
    if (host.empty()) return "missing host";
    if (host.size() > 253) return "host name too long";
    bool numeric = true;
    for (char c : host) {
      if (!is_host_char(c)) return "invalid character in host";
      if (!is_digit(c) && c != '.') numeric = false;
    }
    if (host.front() == '.' || host.find("..") != std::string_view::npos) return "invalid host name";
    if (numeric) {
      // All digits and dots: must be a dotted quad. Shorthand forms such as
      // "127.1" are resolved differently by different libraries.
      char buf[16];
      if (host.size() >= sizeof buf) return "invalid IPv4 address";
      host.copy(buf, host.size());
      buf[host.size()] = '\0';
      in_addr addr;
      if (inet_pton(AF_INET, buf, &addr) != 1) return "invalid IPv4 address";
      url.host_is_ip = true;
    }
  }
  if (std::string reason = parse_port(port_text, url.port); !reason.empty()) return reason;

  url.host.resize(host.size());
  for (size_t i = 0; i < host.size(); ++i) url.host[i] = to_lower(host[i]);

  // The fragment is client-side only and never sent.
  const size_t hash = tail.find('#');
  if (hash != std::string_view::npos) tail = tail.substr(0, hash);
  if (tail.empty() || tail.front() != '/') url.target.push_back('/');
  url.target.append(tail);

  out = std::move(url);
  return {};
}

}  // namespace barrage::http
