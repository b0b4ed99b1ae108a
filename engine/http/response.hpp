// One HTTP response as either protocol delivers it: status, one header
// store and the body. ResponseParser (HTTP/1.1) and H2Session (HTTP/2) fill
// it; everything above the parsers reads only this type.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace barrage::http {

class Response {
 public:
  using Header = std::pair<std::string, std::string>;

  int status() const noexcept { return status_; }  // final status; 0 until it arrived
  bool started() const noexcept { return started_; }  // any byte (1xx included) arrived
  bool headers_complete() const noexcept { return headers_complete_; }
  // Case-insensitive, first match, "" if absent. 1xx headers and trailers are not kept.
  std::string_view header(std::string_view name) const noexcept;
  const std::vector<Header>& headers() const noexcept { return headers_; }
  // The caller may std::move from it once the response is complete.
  std::string& body() noexcept { return body_; }
  const std::string& body() const noexcept { return body_; }

  // ---- for the parsers ----
  void set_status(int s) noexcept { status_ = s; }
  void set_started() noexcept { started_ = true; }
  void set_headers_complete(bool v = true) noexcept { headers_complete_ = v; }
  // A new empty header at the end, reusing a recycled one; nullptr when out of memory.
  Header* new_header() noexcept;
  bool add_header(std::string_view name, std::string_view value) noexcept;
  // Drops the headers (a 1xx's, or the previous response's), keeping their
  // strings for reuse so steady-state parsing does not allocate per header.
  void clear_headers() noexcept;
  // The body read so far is not needed (its reader took it piece by piece);
  // a buffer over keep_capacity is freed.
  void drop_body(size_t keep_capacity) noexcept;
  // Ready for the next response; a body buffer over keep_body_capacity is freed.
  void reset(size_t keep_body_capacity) noexcept;

 private:
  friend class ResponseParser;  // fills the fields piece by piece, as llhttp reports them
  friend class H2Session;
  int status_ = 0;
  bool started_ = false;
  bool headers_complete_ = false;
  std::string body_;
  std::vector<Header> headers_;
  std::vector<Header> spare_;
};

}  // namespace barrage::http
