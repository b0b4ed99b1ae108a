// How long one phase of a reactor turn may go on: I/O dispatch in
// Backend::wait, requests and connections moving in Lifecycle::run_ready.
// A phase that spends its budget stops between two items and leaves the
// rest for the next turn, so the timers that run between phases are never
// more than a budget (and one item) late, however much work arrived at once.
#pragma once

#include <cstdint>

#include "loop/clock.hpp"

namespace barrage {

class TimeBudget {
 public:
  // budget_ns < 0: never spent.
  explicit TimeBudget(int64_t budget_ns) noexcept { restart(budget_ns); }
  static TimeBudget unlimited() noexcept { return TimeBudget(-1); }
  void restart(int64_t budget_ns) noexcept {
    until_ns_ = budget_ns < 0 ? UINT64_MAX : monotonic_ns() + uint64_t(budget_ns);
  }
  // Asked after each item. One clock read (vDSO, ~20 ns): an item costs
  // microseconds, and a costly one (a TLS handshake step) must count at once.
  bool spent() const noexcept { return until_ns_ != UINT64_MAX && monotonic_ns() >= until_ns_; }

 private:
  uint64_t until_ns_ = UINT64_MAX;
};

}  // namespace barrage
