// RequestHead: the HTTP/1.1 form first, the HTTP/2 fields read from it once.
#include "http/request_head.hpp"

namespace barrage::http {

std::string RequestHead::build(std::string_view method, const Url& url, const HeaderView* headers, size_t n_headers,
                               std::string_view body, std::string_view user_agent_version) {
  std::string why = write_request(wire_, method, url, headers, n_headers, body, user_agent_version);
  if (!why.empty()) return why;
  head_ = method == "HEAD";
  switch (h2_.build(wire_, url.scheme == Scheme::https ? "https" : "http")) {
    case H2RequestBuilder::Result::ok: return {};
    case H2RequestBuilder::Result::no_memory: throw std::bad_alloc();
    case H2RequestBuilder::Result::invalid: break;
  }
  return std::string("cannot be sent over HTTP/2: ") + h2_.reason();
}

}  // namespace barrage::http
