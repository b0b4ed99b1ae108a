// The CONNECT request writer and a small hand parser for the proxy's reply.
// llhttp is not used here: it cannot be told that a response answers a
// CONNECT, so it would read a 2xx without Content-Length as a body running
// to EOF, and we need none of its body handling anyway. The reply is read
// line by line within a fixed byte budget.
#include "http/connect_tunnel.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace barrage::http {
namespace {

constexpr size_t kMaxReasonBytes = 128;
constexpr size_t kMaxHostBytes = 255;

constexpr bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// RFC 9110 tchar: what a header name is made of.
constexpr bool is_tchar(char c) noexcept {
  if (is_alpha(c) || is_digit(c)) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

// HTAB, SP, VCHAR and obs-text: what a reason phrase or field value may hold.
constexpr bool is_text(char ch) noexcept {
  const auto c = static_cast<unsigned char>(ch);
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

bool is_ipv6(std::string_view text) noexcept {
  char buf[64];
  if (text.empty() || text.size() >= sizeof buf) return false;
  // inet_pton reads up to the first NUL: "::\0\r\nX: 1" would pass as "::"
  // while the whole text went into the request line.
  if (text.find('\0') != std::string_view::npos) return false;
  text.copy(buf, text.size());
  buf[text.size()] = '\0';
  in6_addr addr;
  return inet_pton(AF_INET6, buf, &addr) == 1;
}

// The host as it goes into "host:port": brackets stripped and reported
// separately, so the caller can add them back. False for anything that is
// not a name or IP literal, since these bytes land in the request line.
bool split_host(std::string_view host, std::string_view& bare, bool& ipv6) noexcept {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty() || host.size() > kMaxHostBytes) return false;
  if (host.find(':') != std::string_view::npos) {
    if (!is_ipv6(host)) return false;
    ipv6 = true;
  } else {
    ipv6 = false;
    const bool ok = std::all_of(host.begin(), host.end(), [](char c) {
      return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_';
    });
    if (!ok) return false;
  }
  bare = host;
  return true;
}

void append_authority(std::string& out, std::string_view bare, bool ipv6, uint16_t port) {
  if (ipv6) out.push_back('[');
  out.append(bare);
  if (ipv6) out.push_back(']');
  char buf[8];
  const auto res = std::to_chars(buf, buf + sizeof buf, port);
  out.push_back(':');
  out.append(buf, res.ptr);
}

}  // namespace

std::string write_connect(std::string_view host, uint16_t port, std::string_view proxy_authorization) {
  std::string_view bare;
  bool ipv6 = false;
  if (port == 0 || !split_host(host, bare, ipv6)) return {};
  // A CR or LF here would let the value end the header and add others.
  const bool clean = std::all_of(proxy_authorization.begin(), proxy_authorization.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c >= 0x20 && c != 0x7f;
  });
  if (!clean) return {};
  try {
    std::string out;
    out.reserve(64 + 2 * bare.size() + proxy_authorization.size());
    out.append("CONNECT ");
    append_authority(out, bare, ipv6, port);
    out.append(" HTTP/1.1\r\nHost: ");
    append_authority(out, bare, ipv6, port);
    out.append("\r\n");
    if (!proxy_authorization.empty()) {
      out.append("Proxy-Authorization: ");
      out.append(proxy_authorization);
      out.append("\r\n");
    }
    out.append("\r\n");
    return out;
  } catch (...) {
    return {};
  }
}

ConnectResponse::ConnectResponse(std::string_view proxy_name, std::string_view host, uint16_t port) noexcept {
  // Only messages depend on these strings; without memory they stay short.
  try {
    proxy_name_.assign(proxy_name.empty() ? std::string_view("proxy") : proxy_name);
    std::string_view bare;
    bool ipv6 = false;
    if (split_host(host, bare, ipv6)) {
      append_authority(target_, bare, ipv6, port);
    } else {
      target_.assign("(invalid host)");
    }
  } catch (...) {
  }
}

ConnectResponse::State ConnectResponse::feed(std::string_view bytes) noexcept {
  static constexpr std::string_view kVersionPrefix = "HTTP/1.";
  if (state_ != State::need_more) return state_;
  try {
    while (!bytes.empty() && state_ == State::need_more) {
      const size_t nl = bytes.find('\n');
      const size_t take = nl == std::string_view::npos ? bytes.size() : nl + 1;
      // Checked before buffering: a reply whose header has not ended
      // within the budget is refused, and memory stays bounded.
      if (take > kMaxConnectReplyHeaderBytes - header_bytes_) {
        fail(Error::too_large, "reply headers exceed 16384 bytes");
        break;
      }
      line_.append(bytes.substr(0, take));
      header_bytes_ += take;
      bytes.remove_prefix(take);
      if (!in_headers_) {
        // Decided on the first bytes: a SOCKS or TLS peer may never send a
        // newline, and waiting for one would only end in a timeout.
        const size_t n = std::min(line_.size(), kVersionPrefix.size());
        if (std::string_view(line_).substr(0, n) != kVersionPrefix.substr(0, n)) {
          fail(Error::protocol, "not an HTTP/1.x reply (is it an HTTP proxy?)");
          break;
        }
      }
      if (nl == std::string_view::npos) break;
      std::string_view line(line_);
      line.remove_suffix(1);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      line_complete(line);
      line_.clear();
    }
    if (state_ == State::established) leftover_.assign(bytes);
  } catch (...) {
    // Also when only the leftover copy failed: an established tunnel that
    // silently lost bytes would break TLS in a way nobody could explain.
    if (state_ == State::established) state_ = State::need_more;
    fail(Error::no_memory, "out of memory");
  }
  return state_;
}

ConnectResponse::State ConnectResponse::finish() noexcept {
  if (state_ != State::need_more) return state_;
  fail(Error::closed, header_bytes_ == 0 ? "closed the connection without answering"
                                         : "closed the connection in the middle of its reply to");
  return state_;
}

void ConnectResponse::line_complete(std::string_view line) {
  if (line.find('\r') != std::string_view::npos) {
    fail(Error::protocol, "bare CR in reply");
    return;
  }
  if (!in_headers_) {
    status_line(line);
    return;
  }
  if (!line.empty()) {
    header_line(line);
    return;
  }
  // The blank line ending a reply's header.
  if (status_ < 200) {
    // An interim reply: the real one follows. Its bytes stay counted, so a
    // flood of 1xx still meets the limit.
    in_headers_ = false;
    status_ = 0;
    return;
  }
  state_ = State::established;
}

void ConnectResponse::status_line(std::string_view line) {
  // "HTTP/1.x SP 3DIGIT [SP reason-phrase]"; the reason may be absent.
  const bool shape = line.size() >= 12 && line.starts_with("HTTP/1.") && is_digit(line[7]) &&
                     line[8] == ' ' && is_digit(line[9]) && is_digit(line[10]) && is_digit(line[11]) &&
                     (line.size() == 12 || line[12] == ' ');
  if (!shape) {
    fail(Error::protocol, "malformed status line");
    return;
  }
  const int status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  if (status < 100 || status > 599) {
    fail(Error::protocol, "malformed status line (status out of range)");
    return;
  }
  const std::string_view reason = line.size() > 12 ? line.substr(13) : std::string_view{};
  if (!std::all_of(reason.begin(), reason.end(), is_text)) {
    fail(Error::protocol, "malformed status line (control character in reason)");
    return;
  }
  if (status == 101) {
    // Nothing was asked to be upgraded; what follows is not ours to read.
    fail(Error::protocol, "unexpected 101 Switching Protocols");
    return;
  }
  status_ = status;
  in_headers_ = true;
  if (status < 200) return;
  reason_.clear();
  for (char c : reason.substr(0, kMaxReasonBytes)) {
    reason_.push_back(static_cast<unsigned char>(c) >= 0x80 ? '?' : c);
  }
  // A refusal is final at its status line; its headers and body (often an
  // HTML page) do not change the outcome.
  if (status >= 300) fail(Error::refused, {});
}

void ConnectResponse::header_line(std::string_view line) {
  if (line.front() == ' ' || line.front() == '\t') {
    fail(Error::protocol, "obsolete header line folding");
    return;
  }
  const size_t colon = line.find(':');
  // Whitespace before the colon is not a tchar, so it is refused here too,
  // as RFC 9112 section 5.1 requires.
  if (colon == 0 || colon == std::string_view::npos ||
      !std::all_of(line.begin(), line.begin() + static_cast<std::ptrdiff_t>(colon), is_tchar)) {
    fail(Error::protocol, "malformed header line");
    return;
  }
  const std::string_view value = line.substr(colon + 1);
  if (!std::all_of(value.begin(), value.end(), is_text)) {
    fail(Error::protocol, "control character in header value");
  }
  // No header of a CONNECT reply changes what we do, so none is kept.
}

void ConnectResponse::fail(Error error, std::string_view why) noexcept {
  if (state_ != State::need_more) return;
  state_ = State::failed;
  error_ = error;
  try {
    std::string& m = error_message_;
    m.assign(proxy_name_);
    switch (error) {
      case Error::refused: {
        m.append(" refused CONNECT to ").append(target_).append(": ");
        char buf[8];
        const auto res = std::to_chars(buf, buf + sizeof buf, status_);
        m.append(buf, res.ptr);
        if (!reason_.empty()) m.append(" ").append(reason_);
        break;
      }
      case Error::closed:
        m.append(" ").append(why).append(" CONNECT to ").append(target_);
        break;
      default:
        m.append(" sent an invalid reply to CONNECT to ").append(target_).append(": ").append(why);
        break;
    }
  } catch (...) {
    error_message_.clear();
  }
  std::string().swap(line_);
}

}  // namespace barrage::http
