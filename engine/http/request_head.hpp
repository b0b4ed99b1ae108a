// A request as both protocols send it, built once: the HTTP/1.1 form at
// submit (sent as is on every attempt over HTTP/1.1), and the HTTP/2 fields
// (pseudo-headers first, lower-cased names) read from it at its first
// HTTP/2 attempt and kept, so both protocols send exactly the same method,
// target, headers and body and no later attempt parses anything.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "http/h2_request.hpp"
#include "http/request_writer.hpp"
#include "http/url.hpp"

namespace barrage::http {

class RequestHead {
 public:
  RequestHead() = default;
  // Fields point into the head itself: neither copyable nor movable.
  RequestHead(const RequestHead&) = delete;
  RequestHead& operator=(const RequestHead&) = delete;

  // "" on success, else why the request was refused (write_request's and
  // H2RequestBuilder's reasons).
  std::string build(std::string_view method, const Url& url, const HeaderView* headers, size_t n_headers,
                    std::string_view body, std::string_view user_agent_version);

  const std::string& wire() const noexcept { return wire_; }  // HTTP/1.1
  bool head_method() const noexcept { return head_; }        // the answer has no body
  // :method, :scheme, :authority, :path, then the headers an HTTP/2 request
  // carries; read from wire() at the first call (HTTP/1.1-only requests never
  // pay for it) and kept. false: *why says why the request cannot go over
  // HTTP/2. Loop thread only.
  bool h2_ready(std::string* why) const noexcept;
  const std::vector<HeaderView>& h2_fields() const noexcept { return h2_.fields(); }
  // Frees the HTTP/2 fields (about 500 bytes a request) when no attempt is
  // expected any more: a stream that delivered events is never sent again,
  // and 100,000 of them would hold 50 MB for nothing. nghttp2 copied them at
  // submit; should an attempt come after all, h2_ready() reads them again.
  void release_h2() noexcept;
  std::string_view body() const noexcept { return std::string_view(wire_).substr(body_at_); }

 private:
  std::string wire_;
  bool head_ = false;
  bool tls_ = true;
  size_t body_at_ = 0;
  mutable bool h2_built_ = false;
  mutable H2RequestBuilder h2_;
};

}  // namespace barrage::http
