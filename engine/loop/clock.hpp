// Monotonic time for the reactor: one clock, read in ns and cut down to the
// ms ticks of the timer wheel and the µs of result timings.
#pragma once
#include <cstdint>

namespace barrage {

uint64_t monotonic_ns() noexcept;
inline uint64_t monotonic_us() noexcept { return monotonic_ns() / 1000; }
inline uint64_t monotonic_ms() noexcept { return monotonic_ns() / 1000000; }

// The time source of everything above the loop: the monotonic clock here,
// a manual one in tests, so that timing rules can be tested without sleeping.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual uint64_t now_ns() const noexcept { return monotonic_ns(); }
  uint64_t now_ms() const noexcept { return now_ns() / 1000000; }
  // Durations from this on (about 34 years; BRG_NO_TIMEOUT is INT64_MAX) mean
  // "never": converting them to ns would overflow into an expiry already past.
  static constexpr int64_t kForeverMs = int64_t(1) << 40;
  // A wheel expiry `ms` from now, rounded up so that no timer fires early;
  // UINT64_MAX (never fires) from kForeverMs on.
  uint64_t expiry_after(int64_t ms) const noexcept {
    if (ms >= kForeverMs) return UINT64_MAX;
    return (now_ns() + uint64_t(ms) * 1000000 + 999999) / 1000000;
  }
};

}  // namespace barrage
