// HTTP/1.1 response parsing for one connection, on top of llhttp: status,
// headers, Content-Length / chunked / close-delimited bodies, keep-alive, and
// the header and body size limits. Reused across keep-alive responses.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/response.hpp"

namespace barrage::http {

struct ResponseLimits {
  size_t max_header_bytes = 64 * 1024;  // status line + all header lines, incl. CRLFs
  size_t max_body_bytes = 64u << 20;    // decoded (de-chunked) body
};

class ResponseParser {
 public:
  enum class State { need_more, complete, error };
  // no_memory: an allocation failed while storing headers or the body.
  enum class Error { none, protocol, too_large, no_memory };

  explicit ResponseParser(const ResponseLimits& limits = {});
  // Movable (the llhttp callback pointer is refreshed on every call), not copyable.
  ResponseParser(ResponseParser&&) noexcept = default;
  ResponseParser& operator=(ResponseParser&&) noexcept = default;
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  // Call before each request's response. A response to HEAD has no body.
  // Keeps the capacity of header and body strings for the next response.
  void reset(bool head_request = false) noexcept;

  // Feeds received bytes. Stops at the end of one response: *consumed tells
  // how many bytes were used; bytes after a complete response are left
  // unconsumed (we do not pipeline, so the caller treats them as a protocol
  // error). 1xx interim responses are skipped. After complete or error,
  // further calls consume nothing and return the same state.
  State feed(const char* data, size_t len, size_t* consumed) noexcept;
  // The peer closed: completes a close-delimited body, else error (protocol).
  State finish() noexcept;

  State state() const noexcept { return state_; }
  bool started() const noexcept { return resp_.started(); }  // at least one byte of this response was fed
  bool headers_complete() const noexcept { return resp_.headers_complete(); }
  int status() const noexcept { return resp_.status(); }  // 0 until the status line is parsed
  bool keep_alive() const noexcept { return keep_alive_; }  // valid when complete
  // Case-insensitive, first match, "" if absent. Trailers are not kept.
  std::string_view header(std::string_view name) const noexcept { return resp_.header(name); }
  const std::vector<std::pair<std::string, std::string>>& headers() const noexcept { return resp_.headers(); }
  // Decoded (de-chunked) body; the caller may std::move from it after completion.
  std::string& body() noexcept { return resp_.body(); }
  // Status, headers and body as one response.
  Response& response() noexcept { return resp_; }
  Error error() const noexcept { return error_; }
  const std::string& error_message() const noexcept { return error_message_; }

  const ResponseLimits& limits() const noexcept { return limits_; }
  // Applies to bytes fed from now on; safe to call at any time.
  void set_limits(const ResponseLimits& limits) noexcept { limits_ = limits; }

 private:
  struct Callbacks;
  friend struct Callbacks;

  void fail(Error error, std::string_view message) noexcept;
  void fail_too_large(std::string_view prefix, size_t limit) noexcept;
  void fail_from_llhttp(llhttp_errno_t err) noexcept;
  void recycle_headers() noexcept;
  void begin_message() noexcept;

  ResponseLimits limits_;
  llhttp_t parser_;
  State state_ = State::need_more;
  Error error_ = Error::none;
  Response resp_;
  bool head_request_ = false;
  bool keep_alive_ = false;
  bool status_line_done_ = false;
  bool in_field_ = false;       // the last header callback was part of a name
  bool message_done_ = false;   // set by on_message_complete for a final response
  bool interim_done_ = false;   // set by on_message_complete for a 1xx response
  size_t header_bytes_ = 0;     // header bytes of this response so far, 1xx included
  std::string error_message_;
};

}  // namespace barrage::http
