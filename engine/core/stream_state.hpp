// A streamed request's (BRG_REQ_STREAM) per-attempt state: the SSE parser,
// its two deadlines (first token, idle gap between events) and the timing
// figures its results report. Allocated only for streamed requests.
#pragma once

#include <cstddef>
#include <cstdint>

#include "http/sse_parser.hpp"
#include "http/usage.hpp"
#include "loop/timer_wheel.hpp"

namespace barrage {

struct StreamState {
  explicit StreamState(size_t max_event_bytes) noexcept : sse(max_event_bytes) {}

  http::SseParser sse;
  Timer first_token_timer;
  Timer idle_timer;
  int64_t first_token_timeout_ms = 0;  // 0 = none
  int64_t idle_timeout_ms = 0;         // 0 = none
  bool keep_body = true;  // false: a 2xx event stream's bytes are dropped once parsed

  // Per attempt (reset when an attempt starts).
  bool sse_body = false;    // this answer is 2xx text/event-stream: parse it
  bool checked = false;     // sse_body has been decided for this answer
  size_t body_seen = 0;     // body bytes already fed to the parser
  uint32_t events = 0;      // data events delivered as partial results
  uint64_t first_token_ns = 0;
  uint64_t last_token_ns = 0;
  uint64_t gap_max_ns = 0;
  uint64_t gap_sum_ns = 0;
  uint32_t gaps = 0;
  http::Usage usage;

  // Partial results already went to the caller: a retry would repeat them.
  uint32_t delivered_total = 0;

  // Whether this attempt's body bytes must be kept for the final outcome.
  bool body_kept() const noexcept { return keep_body || !sse_body; }

  void start_attempt() noexcept {
    sse.reset();
    sse_body = checked = false;
    body_seen = 0;
    events = 0;
    first_token_ns = last_token_ns = gap_max_ns = gap_sum_ns = 0;
    gaps = 0;
    usage = {};
  }
  void token_at(uint64_t now_ns) noexcept {
    if (first_token_ns == 0) {
      first_token_ns = now_ns;
    } else {
      uint64_t gap = now_ns - last_token_ns;
      gap_sum_ns += gap;
      gap_max_ns = gap > gap_max_ns ? gap : gap_max_ns;
      ++gaps;
    }
    last_token_ns = now_ns;
  }
  void merge_usage(const http::Usage& u) noexcept {
    if (u.prompt_tokens >= 0) usage.prompt_tokens = u.prompt_tokens;
    if (u.completion_tokens >= 0) usage.completion_tokens = u.completion_tokens;
  }
};

}  // namespace barrage
