// The per-key admission decision. Both buckets are asked before either is
// charged, so a request that must wait never holds units it cannot use.
#include "flow/rate_gate.hpp"

#include <algorithm>

namespace barrage {
namespace {

constexpr uint64_t kNsPerMs = 1000000;
constexpr uint64_t kMinuteNs = 60 * 1000 * kNsPerMs;

uint64_t add_sat(uint64_t a, uint64_t b) noexcept { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

uint64_t ms_to_ns(int64_t ms) noexcept {
  if (ms <= 0) return 0;
  return uint64_t(ms) > UINT64_MAX / kNsPerMs ? UINT64_MAX : uint64_t(ms) * kNsPerMs;
}

}  // namespace

RateGate::RateGate(const FlowLimits& limits, uint64_t now_ns) noexcept
    : limits_(limits), pause_ns_(ms_to_ns(limits.breaker_pause_ms)) {
  if (limits.requests_per_period > 0 && limits.period_ms > 0) {
    const int64_t burst = limits.request_burst > 0 ? limits.request_burst : limits.requests_per_period;
    requests_.configure(limits.requests_per_period, ms_to_ns(limits.period_ms), burst, now_ns);
  }
  if (limits.tokens_per_minute > 0) {
    const int64_t burst = limits.token_burst > 0 ? limits.token_burst : limits.tokens_per_minute;
    tokens_.configure(limits.tokens_per_minute, kMinuteNs, burst, now_ns);
  }
}

RateGate::Verdict RateGate::acquire(int64_t tokens, uint64_t now_ns, uint64_t* retry_at_ns) noexcept {
  if (breaker_ == Breaker::open) {
    if (now_ns < open_until_) {
      *retry_at_ns = open_until_;
      return Verdict::reject;
    }
    breaker_ = Breaker::half_open;
    probe_out_ = false;
  }
  if (breaker_ == Breaker::half_open && probe_out_) {
    // Not a reject: the key may be healthy again, the probe will tell. The
    // 1 ms floor keeps a zero pause from turning this into a busy loop.
    *retry_at_ns = add_sat(now_ns, std::max(pause_ns_, kNsPerMs));
    return Verdict::wait;
  }
  const uint64_t ready = std::max({requests_.ready_at(1, now_ns), tokens_.ready_at(tokens, now_ns),
                                   cooldown_end_});
  if (ready > now_ns) {
    *retry_at_ns = ready;
    return Verdict::wait;
  }
  // Both ready_at said now, so both takes succeed.
  requests_.try_take(1, now_ns);
  tokens_.try_take(tokens, now_ns);
  if (breaker_ == Breaker::half_open) probe_out_ = probe_granted_ = true;
  *retry_at_ns = now_ns;
  return Verdict::go;
}

void RateGate::settle(int64_t estimated, int64_t actual, uint64_t now_ns) noexcept {
  if (actual < 0 || estimated < 0) return;
  tokens_.adjust(estimated - actual, now_ns);
}

void RateGate::refund(int64_t tokens, uint64_t now_ns) noexcept {
  requests_.adjust(1, now_ns);
  if (tokens > 0) tokens_.adjust(tokens, now_ns);
}

void RateGate::cool_down_until(uint64_t t_ns) noexcept { cooldown_end_ = std::max(cooldown_end_, t_ns); }

void RateGate::observe_limits(int64_t remaining_requests, int64_t reset_requests_ns,
                              int64_t remaining_tokens, int64_t reset_tokens_ns,
                              uint64_t now_ns) noexcept {
  // Our buckets cannot know about other clients of the same quota; the
  // server's count can, so it may only ever make us slower, never faster.
  if (remaining_requests >= 0) requests_.clamp_available(remaining_requests, now_ns);
  if (remaining_tokens >= 0) tokens_.clamp_available(remaining_tokens, now_ns);
  if (remaining_requests == 0 && reset_requests_ns > 0) {
    cool_down_until(add_sat(now_ns, uint64_t(reset_requests_ns)));
  }
  if (remaining_tokens == 0 && reset_tokens_ns > 0) {
    cool_down_until(add_sat(now_ns, uint64_t(reset_tokens_ns)));
  }
}

void RateGate::open_breaker(uint64_t now_ns) noexcept {
  breaker_ = Breaker::open;
  probe_out_ = false;
  open_until_ = add_sat(now_ns, pause_ns_);
}

void RateGate::record_success() noexcept {
  failures_ = 0;
  breaker_ = Breaker::closed;
  probe_out_ = false;
}

void RateGate::record_failure(uint64_t now_ns) noexcept {
  if (failures_ < INT64_MAX) ++failures_;
  if (limits_.breaker_threshold <= 0) return;
  switch (breaker_) {
    case Breaker::closed:
      if (failures_ >= limits_.breaker_threshold) open_breaker(now_ns);
      break;
    case Breaker::half_open:
      // Without request identities a late failure of an attempt started
      // before the breaker opened counts like the probe's: it is evidence too.
      open_breaker(now_ns);
      break;
    case Breaker::open:
      // Attempts started before the breaker opened still report; letting
      // them stretch the pause would keep a recovered key closed for longer.
      break;
  }
}

bool RateGate::breaker_open(uint64_t now_ns) const noexcept {
  return breaker_ == Breaker::open && now_ns < open_until_;
}

}  // namespace barrage
