// A request as the caller describes it, in the engine's own types: what
// capi/ makes of a brg_request (after checking its fields) and what
// Engine::submit takes. Views point into the caller's memory, which must
// stay valid only during submit.
#pragma once

#include <cstdint>
#include <string_view>

#include "http/request_writer.hpp"

namespace barrage {

struct RequestSpec {
  std::string_view method = "POST";
  std::string_view url;
  const http::HeaderView* headers = nullptr;
  size_t n_headers = 0;
  std::string_view body;
  uint64_t user_data = 0;

  bool stream = false;    // server-sent events delivered as partial outcomes
  bool no_retry = false;  // one attempt only
  bool no_cache = false;  // neither read nor write the response cache
  bool keep_headers = false;  // the result carries the answer's header fields
  bool keep_stream_body = true;  // stream: the final outcome carries the raw event stream

  // Timeouts in ms: 0 = the engine's setting. For the stream timeouts, -1
  // switches the engine's setting off for this request.
  int64_t timeout_ms = 0;   // per attempt
  int64_t deadline_ms = 0;  // whole request, from submit; 0 = none
  int64_t first_token_timeout_ms = 0;
  int64_t stream_idle_timeout_ms = 0;
  int32_t max_retries = -1;  // -1 = the engine's setting

  std::string_view limit_key;  // "" = the origin
  uint64_t group = 0;          // 0 = none
  uint32_t token_estimate = 0; // 0 = estimate from the body
};

}  // namespace barrage
