// GCRA token bucket: burst and steady rate, exact ready_at, credit and debt,
// server clamps, exactness over simulated days and huge values.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <vector>

#include "flow/retry_policy.hpp"
#include "flow/token_bucket.hpp"

namespace barrage {
namespace {

constexpr uint64_t kMs = 1000000;
constexpr uint64_t kSec = 1000 * kMs;
// A start far from zero, as a real monotonic clock is.
constexpr uint64_t kT0 = 123456789 * kSec + 987654321;

int take_all(TokenBucket& b, int64_t n, uint64_t now) {
  int granted = 0;
  while (b.try_take(n, now)) ++granted;
  return granted;
}

TEST(TokenBucket, DefaultIsDisabledAndLetsEverythingThrough) {
  TokenBucket b;
  EXPECT_FALSE(b.enabled());
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(b.try_take(1000000, kT0));
  EXPECT_EQ(b.ready_at(INT64_MAX, kT0), kT0);
  EXPECT_EQ(b.available(kT0), INT64_MAX);
  b.adjust(-1000000, kT0);
  b.clamp_available(0, kT0);
  EXPECT_TRUE(b.try_take(1, kT0));
  // Zero or negative rates configure a disabled bucket too.
  b.configure(0, kSec, 10, kT0);
  EXPECT_FALSE(b.enabled());
  b.configure(10, 0, 10, kT0);
  EXPECT_FALSE(b.enabled());
  b.configure(-5, kSec, 10, kT0);
  EXPECT_FALSE(b.enabled());
}

TEST(TokenBucket, BurstThenOnePerIntervalWithExactReadyAt) {
  TokenBucket b;
  b.configure(100, kSec, 10, kT0);
  ASSERT_TRUE(b.enabled());
  EXPECT_EQ(b.available(kT0), 10);
  EXPECT_EQ(b.ready_at(10, kT0), kT0);
  EXPECT_EQ(take_all(b, 1, kT0), 10);
  EXPECT_EQ(b.available(kT0), 0);
  for (int i = 1; i <= 50; ++i) {
    const uint64_t due = kT0 + uint64_t(i) * 10 * kMs;
    ASSERT_EQ(b.ready_at(1, due - 10 * kMs + 1), due) << i;
    ASSERT_FALSE(b.try_take(1, due - 1)) << i;
    ASSERT_TRUE(b.try_take(1, due)) << i;
    ASSERT_FALSE(b.try_take(1, due)) << i;
  }
  // Asking for 3 at once waits for 3 intervals, not one.
  const uint64_t now = kT0 + 500 * kMs;
  EXPECT_EQ(b.ready_at(3, now), now + 30 * kMs);
  EXPECT_EQ(b.ready_at(0, now), now);
  EXPECT_TRUE(b.try_take(0, now));
  // Negative amounts count as zero.
  EXPECT_TRUE(b.try_take(-7, now));
  EXPECT_EQ(b.available(now), 0);
}

TEST(TokenBucket, IdleBucketFillsOnlyToCapacity) {
  TokenBucket b;
  b.configure(100, kSec, 10, kT0);
  EXPECT_EQ(take_all(b, 1, kT0), 10);
  EXPECT_EQ(b.available(kT0 + 50 * kMs), 5);
  EXPECT_EQ(b.available(kT0 + 3600 * kSec), 10);
  EXPECT_EQ(take_all(b, 1, kT0 + 3600 * kSec), 10);
}

// Greedy takers polling at irregular instants for 10 s: the bucket grants
// the burst plus the rate, and no 1-s window sees more than burst + rate.
TEST(TokenBucket, TenSecondsOfGreedyTakersStayWithinTheRate) {
  for (uint64_t seed : {1u, 2u, 3u, 4u}) {
    TokenBucket b;
    b.configure(100, kSec, 10, kT0);
    Random rng(seed);
    std::vector<uint64_t> grants;
    for (uint64_t now = kT0; now < kT0 + 10 * kSec; now += 1 + rng.next() % (3 * kMs)) {
      const int k = int(rng.next() % 4);  // several takers per instant
      for (int i = 0; i < k; ++i) {
        if (b.try_take(1, now)) grants.push_back(now);
      }
    }
    EXPECT_GE(grants.size(), 1009u) << seed;
    EXPECT_LE(grants.size(), 1011u) << seed;
    size_t lo = 0, most = 0;
    for (size_t hi = 0; hi < grants.size(); ++hi) {
      while (grants[hi] - grants[lo] >= kSec) ++lo;
      most = std::max(most, hi - lo + 1);
    }
    EXPECT_LE(most, 110u) << seed;
    EXPECT_GE(most, 100u) << seed;
  }
}

TEST(TokenBucket, TokensPerMinuteWithThousandTokenRequests) {
  TokenBucket b;
  const int64_t tpm = 120000, burst = 120000;
  b.configure(tpm, 60 * kSec, burst, kT0);
  int grants = 0;
  uint64_t now = kT0;
  while (now < kT0 + 60 * kSec) {
    if (b.try_take(1000, now)) {
      ++grants;
    } else {
      const uint64_t next = b.ready_at(1000, now);
      ASSERT_GT(next, now);
      now = next;
    }
  }
  EXPECT_LE(grants, 120 + burst / 1000);
  // Burst of 120, then 2 per second for the 59.x seconds after it.
  EXPECT_EQ(grants, 120 + 119);
}

TEST(TokenBucket, CreditLetsMoreThroughButNeverBeyondCapacity) {
  TokenBucket b;
  b.configure(6000, 60 * kSec, 6000, kT0);  // 100 per second
  ASSERT_TRUE(b.try_take(5000, kT0));
  EXPECT_FALSE(b.try_take(2000, kT0));
  // The answer used 1000 of the 5000 estimated.
  b.adjust(4000, kT0);
  EXPECT_EQ(b.available(kT0), 5000);
  EXPECT_TRUE(b.try_take(2000, kT0));
  EXPECT_TRUE(b.try_take(3000, kT0));
  EXPECT_FALSE(b.try_take(1, kT0));
  b.adjust(1000000, kT0);
  EXPECT_EQ(b.available(kT0), 6000);
  b.adjust(INT64_MAX, kT0);
  EXPECT_EQ(b.available(kT0), 6000);
  // Charging after the fact lowers the level, into debt if need be.
  b.adjust(-7000, kT0);
  EXPECT_EQ(b.available(kT0), -1000);
  EXPECT_EQ(b.ready_at(1, kT0), kT0 + 10010 * kMs);
}

TEST(TokenBucket, RequestLargerThanCapacityWaitsForFullBucketAndLeavesDebt) {
  TokenBucket b;
  b.configure(100, kSec, 10, kT0);
  ASSERT_TRUE(b.try_take(3, kT0));
  // Not full: 25 waits until the bucket is full, not for 25 units.
  EXPECT_FALSE(b.try_take(25, kT0));
  EXPECT_EQ(b.ready_at(25, kT0), kT0 + 30 * kMs);
  EXPECT_FALSE(b.try_take(25, kT0 + 30 * kMs - 1));
  ASSERT_TRUE(b.try_take(25, kT0 + 30 * kMs));
  const uint64_t t = kT0 + 30 * kMs;
  EXPECT_EQ(b.available(t), -15);
  // Half a unit of debt left still counts as a whole unit missing.
  EXPECT_EQ(b.available(t + 145 * kMs), -1);
  EXPECT_EQ(b.available(t + 150 * kMs), 0);
  EXPECT_EQ(b.ready_at(1, t), t + 160 * kMs);
  EXPECT_FALSE(b.try_take(0, t));  // nothing at all goes while in debt
  EXPECT_EQ(b.ready_at(0, t), t + 150 * kMs);
  EXPECT_TRUE(b.try_take(1, t + 160 * kMs));
}

TEST(TokenBucket, ClampAvailableOnlyEverLowersTheLevel) {
  TokenBucket b;
  b.configure(100, kSec, 10, kT0);
  b.clamp_available(-1, kT0);  // header absent
  EXPECT_EQ(b.available(kT0), 10);
  b.clamp_available(50, kT0);
  EXPECT_EQ(b.available(kT0), 10);
  b.clamp_available(3, kT0);
  EXPECT_EQ(b.available(kT0), 3);
  b.clamp_available(5, kT0);
  EXPECT_EQ(b.available(kT0), 3);
  // Refill goes on from the clamped level.
  EXPECT_EQ(b.available(kT0 + 20 * kMs), 5);
  b.clamp_available(0, kT0 + 20 * kMs);
  EXPECT_EQ(b.available(kT0 + 20 * kMs), 0);
  EXPECT_EQ(b.ready_at(1, kT0 + 20 * kMs), kT0 + 30 * kMs);
  // A clamp never pays off debt.
  b.adjust(-5, kT0 + 20 * kMs);
  b.clamp_available(2, kT0 + 20 * kMs);
  EXPECT_EQ(b.available(kT0 + 20 * kMs), -5);
}

TEST(TokenBucket, ReconfigureKeepsTheLevelInsteadOfRefilling) {
  TokenBucket b;
  b.configure(100, kSec, 10, kT0);
  ASSERT_EQ(take_all(b, 1, kT0), 10);
  b.configure(200, kSec, 20, kT0);
  EXPECT_EQ(b.available(kT0), 0);
  EXPECT_EQ(b.ready_at(1, kT0), kT0 + 5 * kMs);
  b.configure(100, kSec, 2, kT0 + kSec);
  EXPECT_EQ(b.available(kT0 + kSec), 2);
}

// 7 units per 3 s has no whole-ns interval: stepped refill would drift. A
// greedy taker over ~4 simulated days must get exactly the rational count.
TEST(TokenBucket, NoDriftOverAMillionOperationsAndDays) {
  TokenBucket b;
  const int64_t amount = 7, capacity = 5;
  const uint64_t period = 3 * kSec;
  b.configure(amount, period, capacity, kT0);
  Random rng(99);
  __int128 taken = take_all(b, 1, kT0);
  ASSERT_EQ(taken, capacity);
  uint64_t now = kT0;
  for (int op = 0; op < 1000000; ++op) {
    now += 1 + rng.next() % (700 * kMs);  // < 5 units per step: never full, never wasted
    const uint64_t elapsed = now - kT0;
    const __int128 due = capacity + __int128(elapsed) * amount / period;
    if (op % 3 == 0) {
      ASSERT_EQ(b.available(now), int64_t(due - taken)) << op;
    }
    while (b.try_take(1, now)) ++taken;
    ASSERT_EQ(taken, due) << op;
    // The next unit comes exactly when the rational count reaches it.
    const __int128 need = taken + 1 - capacity;
    const uint64_t expect = kT0 + uint64_t((need * period + amount - 1) / amount);
    ASSERT_EQ(b.ready_at(1, now), expect) << op;
  }
  EXPECT_GT(now - kT0, 3 * 24 * 3600 * kSec);
}

// Same clock, credit and debt moving in pairs: they must cancel exactly.
TEST(TokenBucket, CreditAndDebtCancelExactly) {
  TokenBucket b;
  b.configure(1000, 7 * kSec, 1000, kT0);
  Random rng(5);
  uint64_t now = kT0;
  ASSERT_TRUE(b.try_take(900, now));
  for (int i = 0; i < 100000; ++i) {
    now += rng.next() % kMs;
    const int64_t before = b.available(now);
    const int64_t k = int64_t(rng.next() % 50);
    b.adjust(-k, now);
    b.adjust(k, now);
    // The credit is capped at capacity only when the level was already at it.
    ASSERT_EQ(b.available(now), before) << i;
    if (before >= 20) {
      ASSERT_TRUE(b.try_take(20, now));
    }
  }
}

TEST(TokenBucket, HugeValuesNeitherOverflowNorStall) {
  const uint64_t late = UINT64_MAX - 10 * kSec;
  {
    // Everything at its maximum: the arithmetic stays in range (UBSan).
    TokenBucket b;
    b.configure(INT64_MAX, UINT64_MAX, INT64_MAX, late);
    ASSERT_TRUE(b.enabled());
    EXPECT_GT(b.available(late), 0);
    EXPECT_TRUE(b.try_take(INT64_MAX, late));
    EXPECT_GE(b.ready_at(INT64_MAX, late), late);
    b.adjust(INT64_MIN, late);
    b.adjust(INT64_MIN, late);
    EXPECT_LT(b.available(late), 0);
    EXPECT_EQ(b.ready_at(1, late), UINT64_MAX);
    b.adjust(INT64_MAX, late);
    b.adjust(INT64_MAX, late);
    EXPECT_GT(b.available(late), 0);
    b.clamp_available(INT64_MAX, late);
    b.clamp_available(0, late);
    EXPECT_EQ(b.available(late), 0);
  }
  {
    // A normal rate near the end of the clock's range.
    TokenBucket b;
    b.configure(100, kSec, 10, late);
    EXPECT_EQ(take_all(b, 1, late), 10);
    EXPECT_EQ(b.ready_at(1, late), late + 10 * kMs);
    EXPECT_TRUE(b.try_take(1, late + 10 * kMs));
    // A debt that would end after the clock does saturates instead of wrapping.
    EXPECT_TRUE(b.try_take(0, late + 10 * kMs));
    b.adjust(-100000, late + 10 * kMs);
    EXPECT_EQ(b.ready_at(1, late + 10 * kMs), UINT64_MAX);
  }
  {
    // An absurd rate behaves as (close to) no limit; it does not stop.
    TokenBucket b;
    b.configure(INT64_MAX, 1, INT64_MAX, kT0);
    for (int i = 0; i < 1000; ++i) ASSERT_TRUE(b.try_take(1000000000, kT0 + uint64_t(i)));
  }
  {
    // One unit per UINT64_MAX ns: after it, the next is beyond the clock.
    TokenBucket b;
    b.configure(1, UINT64_MAX, 1, kT0);
    EXPECT_TRUE(b.try_take(1, kT0));
    EXPECT_FALSE(b.try_take(1, late));
    EXPECT_GT(b.ready_at(1, kT0), late);
  }
  {
    // Past 2^60 units per period the rate is scaled, keeping the ratio:
    // about 1.5e18 per ns here, pinned at 2^60 per ns, capacity at 2^60.
    TokenBucket b;
    b.configure(INT64_MAX, 3, INT64_MAX, 0);
    EXPECT_EQ(take_all(b, int64_t{1} << 59, 0), 2);
    EXPECT_EQ(b.ready_at(int64_t{1} << 59, 0), 1u);
    EXPECT_EQ(b.available(1), int64_t{1} << 60);
  }
  {
    // Just below the scaling threshold the rate is exact: 3e15 per 3e9+1 ns
    // needs 1.0000000003 ns for 1e6 units, so 2 ns.
    TokenBucket b;
    b.configure(3000000000000000, 3000000001, 5000000, 0);
    EXPECT_EQ(take_all(b, 1000000, 0), 5);
    EXPECT_EQ(b.ready_at(1000000, 0), 2u);
    EXPECT_EQ(b.ready_at(1000, 0), 1u);
  }
}

}  // namespace
}  // namespace barrage
