// CONNECT tunnelling through an HTTP proxy (RFC 9110 section 9.3.6), sans
// I/O: the request asking the proxy for a tunnel to host:port, and an
// incremental, bounded reader of the proxy's answer. After "established" the
// connection carries the TLS handshake with the real server.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace barrage::http {

// "CONNECT host:port HTTP/1.1\r\nHost: host:port\r\n"
// ["Proxy-Authorization: <value>\r\n"] "\r\n". An IPv6 host (given with or
// without brackets) is written bracketed. The result holds the credentials:
// do not log it. Returns "" when host is empty or not a plain host name or
// IP literal, port is 0, proxy_authorization contains a control character,
// or memory runs out. Never throws.
std::string write_connect(std::string_view host, uint16_t port, std::string_view proxy_authorization);

inline constexpr size_t kMaxConnectReplyHeaderBytes = 16 * 1024;

// Reads the proxy's reply to one CONNECT. Lines may end in CRLF or a bare LF
// (RFC 9112 allows accepting either); anything else that is not clean
// HTTP/1.x is refused rather than guessed at, because the bytes that follow
// are handed to TLS. 1xx interim replies are skipped; any 2xx establishes
// the tunnel, whatever Content-Length or Transfer-Encoding it carries (RFC
// 9110: a client ignores them on a successful CONNECT); any other final
// status fails as soon as its status line is read, without waiting for
// its headers or body.
class ConnectResponse {
 public:
  enum class State { need_more, established, failed };
  // refused: a final non-2xx status. closed: EOF before the reply ended.
  enum class Error { none, refused, protocol, too_large, closed, no_memory };

  // proxy_name as ProxyConfig::redacted() ("proxy 127.0.0.1:3128"); host and
  // port are the CONNECT target. Only used in messages.
  ConnectResponse(std::string_view proxy_name, std::string_view host, uint16_t port) noexcept;

  // Feeds bytes received from the proxy. On the call that returns
  // established, the bytes after the reply's header end are moved to
  // leftover(). After established or failed, further calls ignore their
  // bytes and return the same state.
  State feed(std::string_view bytes) noexcept;
  // The proxy closed the connection: failed (closed) unless already decided.
  State finish() noexcept;

  State state() const noexcept { return state_; }
  Error error() const noexcept { return error_; }
  // The final status (2xx, or the refusing one); 0 until it is read.
  int status() const noexcept { return status_; }
  // The final status line's reason phrase, non-ASCII replaced by '?' and
  // cut at 128 bytes.
  const std::string& reason() const noexcept { return reason_; }
  // For example "proxy 127.0.0.1:3128 refused CONNECT to api.openai.com:443:
  // 407 Proxy Authentication Required". Empty unless failed.
  const std::string& error_message() const noexcept { return error_message_; }
  // Tunnel bytes that arrived with the reply (normally none: the server
  // speaks only after our ClientHello). The caller may move from it.
  std::string& leftover() noexcept { return leftover_; }

 private:
  // May throw std::bad_alloc, which feed() turns into Error::no_memory.
  void line_complete(std::string_view line);
  void status_line(std::string_view line);
  void header_line(std::string_view line);
  void fail(Error error, std::string_view why) noexcept;

  std::string proxy_name_;
  std::string target_;  // "host:port", IPv6 bracketed
  State state_ = State::need_more;
  Error error_ = Error::none;
  int status_ = 0;
  bool in_headers_ = false;  // a status line was read; now its headers
  size_t header_bytes_ = 0;  // every reply byte so far, 1xx replies included
  std::string line_;         // the current, unfinished line
  std::string reason_;
  std::string error_message_;
  std::string leftover_;
};

}  // namespace barrage::http
