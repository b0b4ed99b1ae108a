// Every gate one limit key has: a request bucket, an LLM-token bucket, a
// cooldown after 429/503, and a circuit breaker. The engine keeps one gate per
// key, a FIFO of the requests waiting on it and one timer set to the instant
// acquire() names, so a blocked key costs nothing until it can move.
#pragma once

#include <cstdint>

#include "flow/token_bucket.hpp"

namespace barrage {

struct FlowLimits {
  int64_t requests_per_period = 0;  // 0: no request limit
  int64_t period_ms = 60000;        // <= 0: no request limit
  int64_t request_burst = 0;        // 0: = requests_per_period
  int64_t tokens_per_minute = 0;    // 0: no token limit
  int64_t token_burst = 0;          // 0: = tokens_per_minute
  int64_t breaker_threshold = 0;    // consecutive failed attempts that open the breaker; 0 = never
  int64_t breaker_pause_ms = 5000;  // open for this long, then one probe
};

class RateGate {
 public:
  RateGate(const FlowLimits& limits, uint64_t now_ns) noexcept;

  enum class Verdict { go, wait, reject };
  // go: units (1 request + `tokens`) taken. wait: nothing taken,
  // *retry_at_ns = earliest instant worth trying again (max of both buckets'
  // ready_at and the cooldown end), always > now_ns. reject: breaker open,
  // *retry_at_ns = when it half-opens. In half-open state exactly one request
  // gets go (the probe); others get wait with retry_at = now +
  // breaker_pause_ms (at least 1 ms) until the probe reports through
  // record_success or record_failure. The engine must report every probe,
  // whatever becomes of it, or the key waits for good.
  Verdict acquire(int64_t tokens, uint64_t now_ns, uint64_t* retry_at_ns) noexcept;

  // Usage known: charge/credit the token bucket by (actual - estimated).
  // actual < 0 = unknown: no-op.
  void settle(int64_t estimated, int64_t actual, uint64_t now_ns) noexcept;
  // An attempt that got no answer to count against the quota (connect
  // failure) gives its units back.
  void refund(int64_t tokens, uint64_t now_ns) noexcept;

  // 429/503: nothing of this key starts before t (extends, never shortens).
  void cool_down_until(uint64_t t_ns) noexcept;
  uint64_t cooldown_end() const noexcept { return cooldown_end_; }
  bool cooling(uint64_t now_ns) const noexcept { return now_ns < cooldown_end_; }

  // x-ratelimit-* headers; -1 = absent. remaining tightens the bucket
  // (clamp_available); remaining == 0 with a reset also cools the key down
  // until now + reset.
  void observe_limits(int64_t remaining_requests, int64_t reset_requests_ns,
                      int64_t remaining_tokens, int64_t reset_tokens_ns, uint64_t now_ns) noexcept;

  // True once after acquire() granted the half-open probe: the caller must
  // then report that request's outcome, or abandon_probe() if it ends with
  // none (cancelled, throttled, cut by a deadline).
  bool take_probe_grant() noexcept {
    bool g = probe_granted_;
    probe_granted_ = false;
    return g;
  }
  // The probe ended without a verdict: the next request probes instead, so
  // a vanished probe cannot hold the key shut for good.
  void abandon_probe() noexcept {
    if (breaker_ == Breaker::half_open) probe_out_ = false;
  }
  void record_success() noexcept;                 // closes the breaker, resets the failure run
  void record_failure(uint64_t now_ns) noexcept;  // counts toward breaker_threshold; a failed probe reopens
  bool breaker_open(uint64_t now_ns) const noexcept;

  const FlowLimits& limits() const noexcept { return limits_; }

 private:
  enum class Breaker { closed, open, half_open };

  void open_breaker(uint64_t now_ns) noexcept;

  FlowLimits limits_;
  TokenBucket requests_;
  TokenBucket tokens_;
  uint64_t cooldown_end_ = 0;
  uint64_t pause_ns_ = 0;
  uint64_t open_until_ = 0;
  int64_t failures_ = 0;  // consecutive, since the last success
  Breaker breaker_ = Breaker::closed;
  bool probe_out_ = false;
  bool probe_granted_ = false;  // half-open and the probe has gone
};

}  // namespace barrage
