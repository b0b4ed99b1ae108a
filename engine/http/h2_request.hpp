// HTTP/2 request fields from the engine's own HTTP/1.1 wire form. A request
// is serialized once at submit (request_writer) and read into these fields
// once, at its first HTTP/2 attempt (RequestHead), so both protocols send
// exactly the same method, target, headers and body.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "http/request_writer.hpp"

namespace barrage::http {

class H2RequestBuilder {
 public:
  enum class Result { ok, invalid, no_memory };

  // Parses `wire` ("METHOD target HTTP/1.x\r\n" headers "\r\n" body) into
  // HTTP/2 fields: :method, :scheme (= `scheme`), :authority (from Host),
  // :path first, then the other headers with lower-cased names, minus the
  // connection-specific ones (Connection, Keep-Alive, Proxy-Connection,
  // Upgrade, Host; TE unless "trailers"). Content-Length is kept and must
  // match the body. Transfer-Encoding is refused: a chunk-framed body cannot
  // be sent as HTTP/2 DATA as it is.
  // Values and body() point into `wire`; names into this builder, valid until
  // the next build(). On failure reason() says why and fields() is empty.
  Result build(std::string_view wire, std::string_view scheme) noexcept;

  const std::vector<HeaderView>& fields() const noexcept { return fields_; }
  std::string_view body() const noexcept { return body_; }
  const char* reason() const noexcept { return reason_; }

 private:
  Result fail(Result r, const char* reason) noexcept;

  // Lower-cased names. Reserved up front for the whole header block, so it
  // never reallocates during one build and the views into it stay valid.
  std::string names_;
  std::vector<HeaderView> fields_;  // kept across builds for its capacity
  std::string_view body_;
  const char* reason_ = "";
};

}  // namespace barrage::http
