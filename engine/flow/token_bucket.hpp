// A token bucket in GCRA form (ATM Forum "generic cell rate algorithm"):
// the whole state is the instant the bucket was, or will again be, empty.
// Refill is never applied in steps, so nothing rounds and nothing drifts,
// however long the engine runs and however often it asks.
#pragma once

#include <cstdint>

namespace barrage {

class TokenBucket {
 public:
  TokenBucket() = default;  // disabled: everything goes

  // `amount` units per `period_ns` refill; `capacity` = most units available
  // at once (burst), raised to 1 if lower. amount <= 0 or period_ns == 0
  // disables the bucket. A new bucket starts full; reconfiguring an enabled
  // one keeps its whole units (and any debt), cut to the new capacity.
  // Exact for any period and up to 2^60 units per period (after reducing
  // the fraction), approximated above; capacity, single takes and debt are
  // capped at 2^60 units.
  void configure(int64_t amount, uint64_t period_ns, int64_t capacity, uint64_t now_ns) noexcept;
  bool enabled() const noexcept { return amount_ > 0; }

  // Takes n >= 0 units if they are available at now_ns. A request larger
  // than capacity is allowed once the bucket is full (it then leaves a debt),
  // so it is never starved forever. n = 0 succeeds unless in debt.
  bool try_take(int64_t n, uint64_t now_ns) noexcept;
  // Earliest instant >= now_ns at which try_take(n) would succeed (now_ns if
  // it would now). UINT64_MAX if that lies beyond the clock's range.
  uint64_t ready_at(int64_t n, uint64_t now_ns) const noexcept;
  // After the fact: delta > 0 gives units back (credit), delta < 0 takes more
  // (may go into debt). The level never exceeds capacity.
  void adjust(int64_t delta, uint64_t now_ns) noexcept;
  // The server says only `remaining` units are left: lower the level to it
  // if ours is higher. remaining < 0 (unknown) does nothing.
  void clamp_available(int64_t remaining, uint64_t now_ns) noexcept;
  // Whole units available now, rounded down (negative in debt); INT64_MAX
  // when disabled.
  int64_t available(uint64_t now_ns) const noexcept;

 private:
  // GCC and Clang on every 64-bit target the engine supports have it.
  __extension__ typedef __int128 Wide;

  // Time is kept scaled by amount_ (1 ns = amount_ scaled units), so one
  // unit of refill is exactly period_ scaled units: integers throughout.
  Wide scaled(uint64_t now_ns) const noexcept { return Wide(now_ns) * amount_; }
  // The empty instant, raised so the level at now_ns is at most capacity.
  Wide effective_empty(Wide now_s) const noexcept;
  static int64_t clamp_units(int64_t n) noexcept;

  int64_t amount_ = 0;    // 0: disabled
  uint64_t period_ = 0;   // scaled cost of one unit, = the refill period in ns
  int64_t capacity_ = 0;
  Wide empty_at_ = 0;     // scaled instant at which the level is zero
};

}  // namespace barrage
