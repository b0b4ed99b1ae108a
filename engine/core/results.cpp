// Results::stamped: the shared fields of every outcome.
#include "core/results.hpp"

#include "core/request.hpp"

namespace barrage {

namespace {
int64_t us_since(uint64_t from_ns, uint64_t at_ns) noexcept { return at_ns ? int64_t(at_ns - from_ns) / 1000 : -1; }
}  // namespace

Outcome* Results::stamped(const Request& r, uint64_t now_ns) noexcept {
  Outcome* o = store_.make();
  if (!o) return nullptr;
  o->id = r.id;
  o->user_data = r.user_data;
  o->attempts = r.attempts;
  o->queued_us = us_since(r.submit_ns, r.granted_ns);
  o->ttfb_us = us_since(r.submit_ns, r.first_byte_ns);
  o->sent_us = us_since(r.submit_ns, r.sent_ns);
  o->total_us = int64_t(now_ns - r.submit_ns) / 1000;
  if (const StreamState* s = r.stream.get()) {
    o->ttft_us = us_since(r.submit_ns, s->first_token_ns);
    o->events = s->events;
    if (s->gaps) {
      o->gap_max_us = int64_t(s->gap_max_ns / 1000);
      o->gap_mean_us = int64_t(s->gap_sum_ns / s->gaps / 1000);
    }
  }
  return o;
}

}  // namespace barrage
