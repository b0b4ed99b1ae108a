// decide_retry: the rules, in the order they apply.
#include "flow/retry_decision.hpp"

#include "barrage.h"

namespace barrage {

RetryDecision decide_retry(const FailureFacts& f, const RequestFacts& r, const StatusSet& statuses,
                           const RetryPolicy& policy, uint64_t now_ms, uint64_t random) noexcept {
  RetryDecision d;
  d.retryable = f.http_status ? statuses.contains(f.http_status) : is_retryable_error(f.status);
  // 1. Events already handed out would be delivered again by any new attempt.
  if (r.events_delivered) {
    d.retryable = false;
    return d;
  }
  bool before_deadline = r.deadline_at_ms == 0 || now_ms < r.deadline_at_ms;
  // 2. Never processed by the server: re-sending is always safe.
  if (f.unprocessed && r.free_resends < kMaxFreeResends && before_deadline) {
    d.action = RetryAction::resend_now;
    return d;
  }
  // 3. A keep-alive connection the server had closed: not the request's fault.
  if (f.reused && f.phase == FailurePhase::send && f.status == BRG_E_IO && !r.stale_retry_used &&
      before_deadline) {
    d.action = RetryAction::fresh_connection;
    return d;
  }
  // 4. A charged retry after backoff, never sooner than the server asked,
  // and only if it can start before the deadline (else report the real
  // failure now rather than a timeout later).
  if (d.retryable && r.retries < r.max_retries) {
    int64_t delay = backoff_delay_ms(policy, r.retries + 1, random);
    if (f.retry_after_ms > delay) delay = f.retry_after_ms;
    uint64_t at = now_ms + uint64_t(delay);
    if (r.deadline_at_ms == 0 || at < r.deadline_at_ms) {
      d.action = RetryAction::back_off;
      d.at_ms = at;
    }
  }
  return d;
}

}  // namespace barrage
