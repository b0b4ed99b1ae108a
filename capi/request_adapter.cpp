// to_spec: one brg_request, whichever header version the caller built it with.
#include "request_adapter.hpp"

#include <cstddef>

namespace barrage::capi {

namespace {
constexpr size_t kRequestV1Size = offsetof(brg_request, token_estimate) + sizeof(uint32_t);
constexpr size_t kRequestWithGroupSize = offsetof(brg_request, group) + sizeof(uint64_t);
constexpr size_t kRequestWithStreamSize = offsetof(brg_request, stream_idle_timeout_ms) + sizeof(int64_t);
constexpr uint32_t kKnownFlags =
    BRG_REQ_STREAM | BRG_REQ_NO_RETRY | BRG_REQ_NO_CACHE | BRG_REQ_HEADERS | BRG_REQ_NO_STREAM_BODY;
}  // namespace

int to_spec(const brg_request* in, RequestSpec* spec, HeaderViews* headers, std::string* err) {
  if (!in) return *err = "request is NULL", BRG_E_INVALID;
  if (in->size < kRequestV1Size || in->size > 65536)
    return *err = "brg_request.size is " + std::to_string(in->size) + "; set it to sizeof(brg_request)",
           BRG_E_INVALID;
  if (in->flags & ~kKnownFlags) return *err = "unknown flag bits in brg_request.flags", BRG_E_INVALID;
  if ((in->flags & BRG_REQ_NO_STREAM_BODY) && !(in->flags & BRG_REQ_STREAM))
    return *err = "BRG_REQ_NO_STREAM_BODY needs BRG_REQ_STREAM", BRG_E_INVALID;
  if (!in->url) return *err = "url is NULL", BRG_E_INVALID;
  if (in->n_headers > 0 && !in->headers) return *err = "headers is NULL but n_headers > 0", BRG_E_INVALID;
  if (in->n_headers > 1024) return *err = "more than 1024 headers", BRG_E_INVALID;
  if (in->body_len > 0 && !in->body) return *err = "body is NULL but body_len > 0", BRG_E_INVALID;
  http::HeaderView* views = headers->reserve(in->n_headers);
  for (uint32_t i = 0; i < in->n_headers; ++i) {
    if (!in->headers[i].name || !in->headers[i].value)
      return *err = "header " + std::to_string(i) + " has a NULL name or value", BRG_E_INVALID;
    views[i] = {in->headers[i].name, in->headers[i].value};
  }
  spec->method = in->method ? in->method : "POST";
  spec->url = in->url;
  spec->headers = views;
  spec->n_headers = in->n_headers;
  spec->body = std::string_view(static_cast<const char*>(in->body), in->body_len);
  spec->user_data = in->user_data;
  spec->stream = in->flags & BRG_REQ_STREAM;
  spec->no_retry = in->flags & BRG_REQ_NO_RETRY;
  spec->no_cache = in->flags & BRG_REQ_NO_CACHE;
  spec->keep_headers = in->flags & BRG_REQ_HEADERS;
  spec->keep_stream_body = !(in->flags & BRG_REQ_NO_STREAM_BODY);
  spec->timeout_ms = in->timeout_ms;
  spec->deadline_ms = in->deadline_ms;
  spec->max_retries = in->max_retries;
  spec->token_estimate = in->token_estimate;
  if (in->size >= kRequestWithGroupSize) {
    spec->limit_key = in->limit_key ? in->limit_key : "";
    spec->group = in->group;
  }
  if (in->size >= kRequestWithStreamSize) {
    spec->first_token_timeout_ms = in->first_token_timeout_ms;
    spec->stream_idle_timeout_ms = in->stream_idle_timeout_ms;
  }
  return 0;
}

}  // namespace barrage::capi
