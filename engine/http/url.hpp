// Absolute URL parsing for request targets: splits an https:// (or, when
// allowed, http://) URL into the pieces the pool, TLS and request writer need.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace barrage::http {

enum class Scheme { https, http };

struct Url {
  Scheme scheme = Scheme::https;
  std::string host;         // lowercased; IPv6 without brackets
  uint16_t port = 443;      // default 443 https / 80 http
  std::string target;       // path + query, always starts with '/', fragment dropped
  bool host_is_ip = false;  // IPv4 or IPv6 literal (no SNI then)
  bool ipv6 = false;

  // Canonical "https://host:port" ("[::1]" bracketed), port always present,
  // so that equivalent spellings of one server share a connection pool.
  std::string origin() const;
  // "host" or "host:port" when the port is not the scheme's default; IPv6 bracketed.
  std::string host_header() const;
  // Appends host_header() to `out` without a temporary string.
  void append_host_header(std::string& out) const;

  uint16_t default_port() const noexcept { return scheme == Scheme::https ? 443 : 80; }
};

inline constexpr size_t kMaxUrlBytes = 8192;

// Parses an absolute URL. Returns "" on success, else a short human-readable
// reason. `out` is only written on success.
std::string parse_url(std::string_view text, bool allow_http, Url& out);

}  // namespace barrage::http
