// RequestHead: the HTTP/1.1 form first, the HTTP/2 fields read from it once.
#include "http/request_head.hpp"

namespace barrage::http {

std::string RequestHead::build(std::string_view method, const Url& url, const HeaderView* headers, size_t n_headers,
                               std::string_view body, std::string_view user_agent_version) {
  std::string why = write_request(wire_, method, url, headers, n_headers, body, user_agent_version);
  if (!why.empty()) return why;
  head_ = method == "HEAD";
  tls_ = url.scheme == Scheme::https;
  body_at_ = wire_.size() - body.size();  // write_request puts the body last, as given
  return {};
}

bool RequestHead::h2_ready(std::string* why) const noexcept {
  if (h2_built_) return true;
  switch (h2_.build(wire_, tls_ ? "https" : "http")) {
    case H2RequestBuilder::Result::ok:
      h2_built_ = true;
      return true;
    case H2RequestBuilder::Result::no_memory:
      if (why) *why = "out of memory";
      return false;
    case H2RequestBuilder::Result::invalid:
      break;
  }
  if (why) *why = std::string("cannot be sent over HTTP/2: ") + h2_.reason();
  return false;
}

void RequestHead::release_h2() noexcept {
  h2_ = H2RequestBuilder{};  // the moved-from storage goes with the temporary
  h2_built_ = false;
}

}  // namespace barrage::http
