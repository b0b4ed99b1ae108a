// StreamDelivery: SSE bytes in, partial outcomes out.
#include "core/stream_delivery.hpp"

#include "barrage.h"
#include "core/answer_head.hpp"
#include "core/request.hpp"
#include "http/ascii.hpp"

namespace barrage {

void StreamDelivery::begin_attempt(Request& r) noexcept {
  StreamState& s = *r.stream;
  s.start_attempt();
  if (s.first_token_timeout_ms > 0) wheel_.arm(s.first_token_timer, clock_.expiry_after(s.first_token_timeout_ms));
  if (s.idle_timeout_ms > 0) wheel_.arm(s.idle_timer, clock_.expiry_after(s.idle_timeout_ms));
}

void StreamDelivery::cancel_timers(Request& r) noexcept {
  StreamState& s = *r.stream;
  if (s.first_token_timer.armed()) wheel_.cancel(s.first_token_timer);
  if (s.idle_timer.armed()) wheel_.cancel(s.idle_timer);
}

std::string StreamDelivery::feed(Request& r, const http::Response& resp, std::string_view piece) noexcept {
  StreamState& s = *r.stream;
  int http_status = resp.status();
  if (!s.checked) {
    // Error answers and servers that ignore "stream" are read whole, as usual.
    s.checked = true;
    std::string_view type = resp.header("content-type");
    s.sse_body = http_status >= 200 && http_status < 300 && type.size() >= 17 &&
                 http::iequals(type.substr(0, 17), "text/event-stream");
    // The first event's result carries the head, as a response object would
    // before its body.
    if (s.sse_body) {
      keep_answer_head(r, resp);
      r.retry_after_ms = -1;
    }
  }
  if (!s.sse_body) return {};
  uint64_t now = clock_.now_ns();
  uint32_t before = s.events;
  http::SseParser::Status st =
      s.sse.feed(piece, [&](const http::SseEvent& ev) noexcept { return deliver(r, http_status, ev.data, now); });
  if (st == http::SseParser::Status::error) return "server-sent event stream: " + std::string(s.sse.error());
  if (s.events != before && s.idle_timeout_ms > 0) wheel_.arm(s.idle_timer, clock_.expiry_after(s.idle_timeout_ms));
  return {};
}

// One data event becomes one partial outcome. Returns true (keep parsing).
bool StreamDelivery::deliver(Request& r, int http_status, std::string_view data, uint64_t now) noexcept {
  StreamState& s = *r.stream;
  http::StreamEventInfo info = events_.read(data);
  s.merge_usage(info.usage);
  if (info.done) return true;
  if (info.token) {
    if (s.first_token_ns == 0 && s.first_token_timer.armed()) wheel_.cancel(s.first_token_timer);
    s.token_at(now);
  }
  ++s.events;
  ++s.delivered_total;
  // A stream that delivered an event is not sent again (barrage.h, BRG_REQ_STREAM).
  if (s.delivered_total == 1) r.head.release_h2();
  Outcome* o = results_.stamped(r, now);
  if (!o) return true;  // the final outcome still carries the whole stream
  try {
    o->body.assign(data);
    if (s.events == 1) {  // copied: the final result has them too
      o->request_id = r.request_id;
      o->headers = r.headers;
    }
  } catch (...) {
    results_.discard(o);
    return true;  // likewise
  }
  o->kind = Outcome::partial;
  o->status = BRG_OK;
  o->http_status = http_status;
  results_.push(o);
  return true;
}

}  // namespace barrage
