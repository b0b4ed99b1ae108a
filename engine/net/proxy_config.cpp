// Parsing of HTTPS_PROXY and NO_PROXY, and the NO_PROXY match. Error
// messages quote the scheme, the port and NO_PROXY entries, never anything
// that could be a user name or password.
#include "net/proxy_config.hpp"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>

namespace barrage {
namespace {

constexpr size_t kMaxProxyUrlBytes = 8192;
constexpr size_t kMaxNoProxyBytes = 64 * 1024;  // corporate lists can be long
constexpr size_t kMaxCredentialBytes = 4096;
constexpr size_t kMaxQuotedEntry = 64;  // how much of a bad NO_PROXY entry a message repeats

constexpr char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
constexpr bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr bool is_blank(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// 1..65535, decimal digits only.
bool parse_port(std::string_view text, uint16_t& port) noexcept {
  if (text.empty() || text.size() > 5) return false;
  unsigned value = 0;
  for (char c : text) {
    if (!is_digit(c)) return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value == 0 || value > 65535) return false;
  port = static_cast<uint16_t>(value);
  return true;
}

// inet_pton wants a NUL-terminated string; literals are short, so a stack
// copy avoids allocating.
bool parse_ip(int family, std::string_view text, uint8_t* addr) noexcept {
  char buf[64];
  if (text.empty() || text.size() >= sizeof buf) return false;
  if (text.find('\0') != std::string_view::npos) return false;  // inet_pton stops at a NUL
  text.copy(buf, text.size());
  buf[text.size()] = '\0';
  return inet_pton(family, buf, addr) == 1;
}

// A DNS name as we accept it for a proxy host or a NO_PROXY entry: letters,
// digits, '-', '_' and dots, no empty label (a trailing dot is the caller's
// business). All-numeric names must be real dotted quads, because "127.1"
// style shorthands are read differently by different resolvers.
enum class NameCheck { ok, bad, bad_ipv4 };
NameCheck check_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 253) return NameCheck::bad;
  if (name.front() == '.' || name.back() == '.') return NameCheck::bad;
  if (name.find("..") != std::string_view::npos) return NameCheck::bad;
  bool numeric = true;
  for (char c : name) {
    if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_' && c != '.') return NameCheck::bad;
    if (!is_digit(c) && c != '.') numeric = false;
  }
  if (numeric) {
    uint8_t addr[4];
    if (!parse_ip(AF_INET, name, addr)) return NameCheck::bad_ipv4;
  }
  return NameCheck::ok;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = hex_value(in[i + 1]);
    const int lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

bool has_control(std::string_view s) noexcept {
  return std::any_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c < 0x20 || c == 0x7f;
  });
}

// Wipes a string that held a password before its memory is released.
struct Scrubbed {
  std::string value;
  ~Scrubbed() {
    if (!value.empty()) OPENSSL_cleanse(value.data(), value.size());
  }
};

bool prefix_matches(const uint8_t* a, const uint8_t* network, unsigned bits) noexcept {
  const unsigned whole = bits / 8;
  if (std::memcmp(a, network, whole) != 0) return false;
  const unsigned rest = bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (network[whole] & mask);
}

void mask_to_prefix(uint8_t* addr, size_t len, unsigned bits) noexcept {
  for (size_t i = 0; i < len; ++i) {
    const unsigned first_bit = static_cast<unsigned>(i) * 8;
    if (first_bit >= bits) {
      addr[i] = 0;
    } else if (bits - first_bit < 8) {
      addr[i] &= static_cast<uint8_t>(0xff << (8 - (bits - first_bit)));
    }
  }
}

std::string entry_error(std::string_view what, std::string_view token) {
  std::string msg = "NO_PROXY: ";
  msg.append(what);
  msg.append(" in entry '");
  msg.append(token.substr(0, kMaxQuotedEntry));
  if (token.size() > kMaxQuotedEntry) msg.append("...");
  msg.push_back('\'');
  return msg;
}

}  // namespace

std::string ProxyConfig::parse(std::string_view proxy_url, std::string_view no_proxy, ProxyConfig* out) {
  if (out == nullptr) return "ProxyConfig::parse: no output";
  try {
    ProxyConfig cfg;
    if (std::string err = parse_proxy_url(proxy_url, cfg); !err.empty()) return err;
    // Without a proxy everything goes direct; a NO_PROXY value meant for
    // other tools must not stop the engine from starting.
    if (cfg.is_set()) {
      if (std::string err = parse_no_proxy(no_proxy, cfg); !err.empty()) return err;
    }
    *out = std::move(cfg);
    return {};
  } catch (...) {
    return "HTTPS_PROXY: out of memory while parsing proxy settings";
  }
}

std::string ProxyConfig::parse_proxy_url(std::string_view text, ProxyConfig& cfg) {
  text = trim(text);
  if (text.empty()) return {};
  if (text.size() > kMaxProxyUrlBytes) return "HTTPS_PROXY: longer than 8192 bytes";
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f) return "HTTPS_PROXY: invalid character in proxy URL";
  }

  if (const size_t sep = text.find("://"); sep != std::string_view::npos) {
    const std::string_view scheme = text.substr(0, sep);
    const bool valid = !scheme.empty() && is_alpha(scheme[0]) &&
                       std::all_of(scheme.begin(), scheme.end(), [](char c) {
                         return is_alpha(c) || is_digit(c) || c == '+' || c == '-' || c == '.';
                       });
    // Not a scheme: do not quote it, it may be part of a password.
    if (!valid) return "HTTPS_PROXY: invalid URL scheme (expected http://host:port)";
    if (iequals(scheme, "https")) {
      return "HTTPS_PROXY: https:// proxies (TLS to the proxy) are not supported; use an http:// "
             "proxy URL (the tunnel to the server is still TLS)";
    }
    if (!iequals(scheme, "http")) {
      std::string msg = "HTTPS_PROXY: unsupported scheme '";
      msg.append(scheme.substr(0, 32));
      msg.append("' (only http:// proxies)");
      return msg;
    }
    text.remove_prefix(sep + 3);
  }

  const size_t auth_end = text.find_first_of("/?#");
  const std::string_view authority = text.substr(0, auth_end);
  if (auth_end != std::string_view::npos && text.substr(auth_end) != "/") {
    return "HTTPS_PROXY: unexpected path, query or fragment (expected http://host:port)";
  }

  // The last '@' ends the user information: a host never contains one, an
  // unencoded password sometimes does.
  std::string_view host_port = authority;
  std::string authorization;
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    host_port = authority.substr(at + 1);
    if (userinfo.size() > kMaxCredentialBytes) return "HTTPS_PROXY: proxy credentials longer than 4096 bytes";
    const size_t colon = userinfo.find(':');
    Scrubbed user, pass;
    if (!percent_decode(userinfo.substr(0, colon), user.value) ||
        (colon != std::string_view::npos && !percent_decode(userinfo.substr(colon + 1), pass.value))) {
      return "HTTPS_PROXY: invalid percent-encoding in proxy credentials";
    }
    // RFC 7617: the user-id cannot contain ':', and neither part control characters.
    if (user.value.find(':') != std::string::npos) return "HTTPS_PROXY: proxy user name contains ':'";
    if (has_control(user.value) || has_control(pass.value)) {
      return "HTTPS_PROXY: control character in proxy credentials";
    }
    if (!user.value.empty() || !pass.value.empty()) {
      Scrubbed plain;
      plain.value.reserve(user.value.size() + 1 + pass.value.size());
      plain.value.append(user.value).append(":").append(pass.value);
      Scrubbed encoded;
      encoded.value.resize(4 * ((plain.value.size() + 2) / 3) + 1);
      const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.value.data()),
                                    reinterpret_cast<const unsigned char*>(plain.value.data()),
                                    static_cast<int>(plain.value.size()));
      if (n < 0) return "HTTPS_PROXY: cannot encode proxy credentials";
      authorization.reserve(6 + static_cast<size_t>(n));
      authorization.append("Basic ").append(encoded.value.data(), static_cast<size_t>(n));
    }
  }

  std::string_view host;
  std::string_view port_text;
  bool has_port = false;
  bool ipv6 = false;
  if (!host_port.empty() && host_port.front() == '[') {
    const size_t close = host_port.find(']');
    if (close == std::string_view::npos) return "HTTPS_PROXY: unterminated IPv6 address";
    host = host_port.substr(1, close - 1);
    const std::string_view after = host_port.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return "HTTPS_PROXY: invalid character after IPv6 address";
      port_text = after.substr(1);
      has_port = true;
    }
    uint8_t addr[16];
    if (!parse_ip(AF_INET6, host, addr)) return "HTTPS_PROXY: invalid IPv6 address";
    ipv6 = true;
  } else {
    const size_t colon = host_port.find(':');
    host = host_port.substr(0, colon);
    if (colon != std::string_view::npos) {
      port_text = host_port.substr(colon + 1);
      has_port = true;
      if (port_text.find(':') != std::string_view::npos) {
        return "HTTPS_PROXY: IPv6 address must be in brackets (http://[::1]:3128)";
      }
    }
    if (host.empty()) return "HTTPS_PROXY: missing proxy host";
    // A trailing dot (fully qualified name) is allowed for the proxy host.
    std::string_view name = host;
    if (name.size() > 1 && name.back() == '.') name.remove_suffix(1);
    switch (check_name(name)) {
      case NameCheck::ok: break;
      case NameCheck::bad: return "HTTPS_PROXY: invalid proxy host name";
      case NameCheck::bad_ipv4: return "HTTPS_PROXY: invalid IPv4 address";
    }
  }
  if (host.empty()) return "HTTPS_PROXY: missing proxy host";
  if (!has_port || port_text.empty()) {
    return "HTTPS_PROXY: missing proxy port (write it, e.g. http://proxy:3128; curl would assume "
           "1080 and Python requests 80)";
  }
  uint16_t port = 0;
  if (!parse_port(port_text, port)) {
    const bool digits = port_text.size() <= 8 && std::all_of(port_text.begin(), port_text.end(), is_digit);
    if (!digits) return "HTTPS_PROXY: bad proxy port (not a number from 1 to 65535)";
    std::string msg = "HTTPS_PROXY: bad proxy port '";
    msg.append(port_text);
    msg.append("' (expected 1 to 65535)");
    return msg;
  }

  cfg.host_.resize(host.size());
  std::transform(host.begin(), host.end(), cfg.host_.begin(), lower);
  cfg.port_ = port;
  cfg.ipv6_ = ipv6;
  cfg.authorization_ = std::move(authorization);
  return {};
}

std::string ProxyConfig::parse_no_proxy(std::string_view text, ProxyConfig& cfg) {
  if (text.size() > kMaxNoProxyBytes) return "NO_PROXY: longer than 65536 bytes";
  size_t pos = 0;
  while (pos < text.size()) {
    while (pos < text.size() && (text[pos] == ',' || is_blank(text[pos]))) ++pos;
    const size_t start = pos;
    while (pos < text.size() && text[pos] != ',' && !is_blank(text[pos])) ++pos;
    if (pos > start) {
      if (std::string err = parse_entry(text.substr(start, pos - start), cfg); !err.empty()) return err;
    }
  }
  return {};
}

std::string ProxyConfig::parse_entry(std::string_view token, ProxyConfig& cfg) {
  if (token == "*") {
    cfg.bypass_all_ = true;
    return {};
  }
  std::string_view addr = token;
  std::string_view bits_text;
  std::string_view port_text;
  bool has_bits = false;
  bool has_port = false;
  bool bracketed = false;

  if (token.front() == '[') {
    // "[v6]", "[v6]:port", "[v6/bits]", "[v6]/bits", each optionally ":port".
    const size_t close = token.find(']');
    if (close == std::string_view::npos) return entry_error("unterminated '['", token);
    bracketed = true;
    addr = token.substr(1, close - 1);
    std::string_view after = token.substr(close + 1);
    if (!after.empty() && after.front() == '/') {
      const size_t colon = after.find(':');
      bits_text = after.substr(1, colon == std::string_view::npos ? std::string_view::npos : colon - 1);
      has_bits = true;
      after = colon == std::string_view::npos ? std::string_view{} : after.substr(colon);
    }
    if (!after.empty()) {
      if (after.front() != ':') return entry_error("unexpected text after ']'", token);
      port_text = after.substr(1);
      has_port = true;
    }
  } else if (std::count(token.begin(), token.end(), ':') == 1) {
    // One colon: host:port. Two or more: an unbracketed IPv6 address, which
    // cannot carry a port.
    const size_t colon = token.find(':');
    addr = token.substr(0, colon);
    port_text = token.substr(colon + 1);
    has_port = true;
  }
  if (const size_t slash = addr.find('/'); slash != std::string_view::npos) {
    if (has_bits) return entry_error("two CIDR prefixes", token);
    bits_text = addr.substr(slash + 1);
    addr = addr.substr(0, slash);
    has_bits = true;
  }

  Entry e;
  if (has_port && !parse_port(port_text, e.port)) return entry_error("bad port", token);

  unsigned max_bits = 0;
  if (!bracketed && parse_ip(AF_INET, addr, e.addr)) {
    e.kind = Entry::Kind::ipv4;
    max_bits = 32;
  } else if (parse_ip(AF_INET6, addr, e.addr)) {
    e.kind = Entry::Kind::ipv6;
    max_bits = 128;
  } else if (bracketed) {
    return entry_error("invalid IPv6 address", token);
  }

  if (e.kind != Entry::Kind::name) {
    unsigned bits = max_bits;
    if (has_bits) {
      if (bits_text.empty() || bits_text.size() > 3 ||
          !std::all_of(bits_text.begin(), bits_text.end(), is_digit)) {
        return entry_error("bad CIDR prefix length", token);
      }
      bits = 0;
      for (char c : bits_text) bits = bits * 10 + static_cast<unsigned>(c - '0');
      if (bits > max_bits) return entry_error("bad CIDR prefix length", token);
    }
    e.prefix_bits = static_cast<uint8_t>(bits);
    // "10.1.2.3/8" is read as the network 10.0.0.0/8, as curl does.
    mask_to_prefix(e.addr, max_bits / 8, bits);
    cfg.entries_.push_back(std::move(e));
    return {};
  }

  if (has_bits) return entry_error("CIDR prefix on a host name", token);
  std::string_view name = addr;
  // "*.example.com" and ".example.com" mean what "example.com" means.
  if (name.starts_with("*.")) {
    name.remove_prefix(2);
  } else if (name.starts_with(".")) {
    name.remove_prefix(1);
  }
  if (name.size() > 1 && name.back() == '.') name.remove_suffix(1);
  if (name.find('*') != std::string_view::npos) {
    return entry_error("'*' allowed only alone or as a leading '*.'", token);
  }
  switch (check_name(name)) {
    case NameCheck::ok: break;
    case NameCheck::bad: return entry_error("invalid host name", token);
    case NameCheck::bad_ipv4: return entry_error("invalid IPv4 address", token);
  }
  e.name.resize(name.size());
  std::transform(name.begin(), name.end(), e.name.begin(), lower);
  cfg.entries_.push_back(std::move(e));
  return {};
}

std::string ProxyConfig::redacted() const {
  if (!is_set()) return "no proxy";
  try {
    std::string out = "proxy ";
    if (ipv6_) out.push_back('[');
    out.append(host_);
    if (ipv6_) out.push_back(']');
    out.push_back(':');
    out.append(std::to_string(port_));
    return out;
  } catch (...) {
    return {};
  }
}

bool ProxyConfig::bypass(std::string_view host, uint16_t port) const noexcept {
  if (!is_set() || bypass_all_) return true;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  uint8_t addr[16];
  Entry::Kind kind = Entry::Kind::name;
  if (parse_ip(AF_INET, host, addr)) {
    kind = Entry::Kind::ipv4;
  } else if (parse_ip(AF_INET6, host, addr)) {
    kind = Entry::Kind::ipv6;
  } else if (!host.empty() && host.back() == '.') {
    host.remove_suffix(1);
  }
  if (host.empty()) return false;

  for (const Entry& e : entries_) {
    if (e.port != 0 && e.port != port) continue;
    if (e.kind != kind) continue;
    if (kind != Entry::Kind::name) {
      if (prefix_matches(addr, e.addr, e.prefix_bits)) return true;
      continue;
    }
    const size_t n = e.name.size();
    if (host.size() == n) {
      if (iequals(host, e.name)) return true;
    } else if (host.size() > n && host[host.size() - n - 1] == '.') {
      if (iequals(host.substr(host.size() - n), e.name)) return true;
    }
  }
  return false;
}

}  // namespace barrage
