// GCRA token bucket. All arithmetic is in 128-bit integers on a time scale
// multiplied by the refill amount, so a rate like 7 units per 3 s is exact.
#include "flow/token_bucket.hpp"

#include <algorithm>
#include <cstdint>
#include <numeric>

namespace barrage {
namespace {

// Bounds that keep every product at or below 2^124 and every sum of a few of
// them inside __int128: now (2^64) * amount (2^60), and units (capacity,
// debt, one take) (2^60) * period (2^64).
constexpr int64_t kMaxUnits = int64_t{1} << 60;

}  // namespace

int64_t TokenBucket::clamp_units(int64_t n) noexcept { return std::clamp<int64_t>(n, 0, kMaxUnits); }

TokenBucket::Wide TokenBucket::effective_empty(Wide now_s) const noexcept {
  return std::max(empty_at_, now_s - Wide(capacity_) * period_);
}

void TokenBucket::configure(int64_t amount, uint64_t period_ns, int64_t capacity,
                            uint64_t now_ns) noexcept {
  const bool was_enabled = enabled();
  const int64_t kept = was_enabled ? available(now_ns) : 0;
  if (amount <= 0 || period_ns == 0) {
    *this = TokenBucket();
    return;
  }
  // Lowest terms first, so only a rate of more than 2^60 units per period
  // is approximated, by halving both terms until it fits; past 2^60 units
  // per ns it is pinned there, which no caller can tell from unlimited.
  uint64_t a = uint64_t(amount), p = period_ns;
  const uint64_t g = std::gcd(a, p);
  a /= g;
  p /= g;
  while (a > uint64_t(kMaxUnits) && p > 1) {
    a = a / 2 + (a & 1);  // rounded up without (x + 1) wrapping
    p = p / 2 + (p & 1);
  }
  amount_ = int64_t(std::min(a, uint64_t(kMaxUnits)));
  period_ = p;
  capacity_ = std::clamp<int64_t>(capacity, 1, kMaxUnits);
  const Wide now_s = scaled(now_ns);
  // A reconfigured bucket must not hand out a fresh burst: keep what was
  // left. The fraction of a unit is dropped, which errs on the slow side.
  const int64_t level = was_enabled ? std::clamp<int64_t>(kept, -kMaxUnits, capacity_) : capacity_;
  empty_at_ = now_s - Wide(level) * period_;
}

bool TokenBucket::try_take(int64_t n, uint64_t now_ns) noexcept {
  if (!enabled()) return true;
  n = clamp_units(n);
  const Wide now_s = scaled(now_ns);
  const Wide empty = effective_empty(now_s);
  // Over-capacity requests only need a full bucket, or they would wait forever.
  if (empty + Wide(std::min(n, capacity_)) * period_ > now_s) return false;
  empty_at_ = std::min(empty + Wide(n) * period_, now_s + Wide(kMaxUnits) * period_);
  return true;
}

uint64_t TokenBucket::ready_at(int64_t n, uint64_t now_ns) const noexcept {
  if (!enabled()) return now_ns;
  n = clamp_units(n);
  const Wide now_s = scaled(now_ns);
  const Wide needed = effective_empty(now_s) + Wide(std::min(n, capacity_)) * period_;
  if (needed <= now_s) return now_ns;
  // Round up: at the floor instant the bucket would still be a fraction short.
  const Wide t = (needed + amount_ - 1) / amount_;
  return t > Wide(UINT64_MAX) ? UINT64_MAX : uint64_t(t);
}

void TokenBucket::adjust(int64_t delta, uint64_t now_ns) noexcept {
  if (!enabled() || delta == 0) return;
  const Wide now_s = scaled(now_ns);
  const Wide full = now_s - Wide(capacity_) * period_;
  const Wide empty = effective_empty(now_s);
  if (delta > 0) {
    empty_at_ = std::max(empty - Wide(clamp_units(delta)) * period_, full);
  } else {
    const int64_t debt = delta == INT64_MIN ? kMaxUnits : clamp_units(-delta);
    empty_at_ = std::min(empty + Wide(debt) * period_, now_s + Wide(kMaxUnits) * period_);
  }
}

void TokenBucket::clamp_available(int64_t remaining, uint64_t now_ns) noexcept {
  if (!enabled() || remaining < 0) return;
  const Wide now_s = scaled(now_ns);
  const Wide target = now_s - Wide(std::min(remaining, capacity_)) * period_;
  if (effective_empty(now_s) < target) empty_at_ = target;
}

int64_t TokenBucket::available(uint64_t now_ns) const noexcept {
  if (!enabled()) return INT64_MAX;
  const Wide diff = scaled(now_ns) - effective_empty(scaled(now_ns));
  // Floor division: a bucket 0.5 units in debt has -1 whole units.
  Wide q = diff / period_;
  if (diff % period_ != 0 && diff < 0) --q;
  if (q < Wide(INT64_MIN)) return INT64_MIN;
  return int64_t(q);  // at most capacity_
}

}  // namespace barrage
