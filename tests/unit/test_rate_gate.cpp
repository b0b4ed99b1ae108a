// One limit key's gates together: go/wait/reject, cooldown, server headers
// (and the parsers for them, which exist only to feed this gate), the
// circuit breaker's open/half-open/closed cycle, settle and refund.
#include <gtest/gtest.h>

#include <cstdint>

#include "flow/rate_gate.hpp"
#include "flow/rate_headers.hpp"

namespace barrage {
namespace {

using Verdict = RateGate::Verdict;

constexpr uint64_t kMs = 1000000;
constexpr uint64_t kSec = 1000 * kMs;
constexpr uint64_t kT0 = 86400 * kSec + 12345;

FlowLimits requests(int64_t per_period, int64_t period_ms, int64_t burst = 0) {
  FlowLimits l;
  l.requests_per_period = per_period;
  l.period_ms = period_ms;
  l.request_burst = burst;
  return l;
}

FlowLimits tokens(int64_t tpm, int64_t burst = 0) {
  FlowLimits l;
  l.tokens_per_minute = tpm;
  l.token_burst = burst;
  return l;
}

TEST(RateGate, NoLimitsMeansGoAlways) {
  RateGate g(FlowLimits{}, kT0);
  uint64_t at = 0;
  for (int i = 0; i < 10000; ++i) ASSERT_EQ(g.acquire(1000000, kT0, &at), Verdict::go);
  EXPECT_FALSE(g.cooling(kT0));
  EXPECT_FALSE(g.breaker_open(kT0));
  EXPECT_EQ(g.limits().requests_per_period, 0);
}

TEST(RateGate, RequestBucketGivesBurstThenWaitsExactly) {
  RateGate g(requests(2, 1000), kT0);
  uint64_t at = 0;
  EXPECT_EQ(g.acquire(0, kT0, &at), Verdict::go);
  EXPECT_EQ(g.acquire(0, kT0, &at), Verdict::go);
  ASSERT_EQ(g.acquire(0, kT0, &at), Verdict::wait);
  EXPECT_EQ(at, kT0 + 500 * kMs);
  EXPECT_EQ(g.acquire(0, at - 1, &at), Verdict::wait);
  EXPECT_EQ(at, kT0 + 500 * kMs);
  EXPECT_EQ(g.acquire(0, at, &at), Verdict::go);
  // Explicit burst above the rate.
  RateGate b(requests(60, 60000, 5), kT0);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(b.acquire(0, kT0, &at), Verdict::go);
  ASSERT_EQ(b.acquire(0, kT0, &at), Verdict::wait);
  EXPECT_EQ(at, kT0 + kSec);
}

TEST(RateGate, WaitTakesNothingAndRetryAtIsTheLaterBucket) {
  FlowLimits l = requests(2, 1000);
  l.tokens_per_minute = 6000;  // 100 per second
  RateGate g(l, kT0);
  uint64_t at = 0;
  ASSERT_EQ(g.acquire(5000, kT0, &at), Verdict::go);
  // Tokens short by 1000 (10 s); the request bucket still has one.
  ASSERT_EQ(g.acquire(2000, kT0, &at), Verdict::wait);
  EXPECT_EQ(at, kT0 + 10 * kSec);
  // The waited request did not use the request unit: a small one gets it.
  ASSERT_EQ(g.acquire(1000, kT0, &at), Verdict::go);
  // Now the request bucket is the later one (500 ms) and the tokens are 0 short.
  ASSERT_EQ(g.acquire(0, kT0, &at), Verdict::wait);
  EXPECT_EQ(at, kT0 + 500 * kMs);
  ASSERT_EQ(g.acquire(100, kT0 + 500 * kMs, &at), Verdict::wait);
  EXPECT_EQ(at, kT0 + kSec);
  EXPECT_EQ(g.acquire(100, kT0 + kSec, &at), Verdict::go);
}

TEST(RateGate, RequestLargerThanTokenBurstStillGoesOnceFull) {
  RateGate g(tokens(6000, 1000), kT0);
  uint64_t at = 0;
  ASSERT_EQ(g.acquire(400, kT0, &at), Verdict::go);
  ASSERT_EQ(g.acquire(5000, kT0, &at), Verdict::wait);
  EXPECT_EQ(at, kT0 + 4 * kSec);
  ASSERT_EQ(g.acquire(5000, at, &at), Verdict::go);
  // 4000 in debt: the next small request waits 40 s plus its own cost.
  ASSERT_EQ(g.acquire(100, kT0 + 4 * kSec, &at), Verdict::wait);
  EXPECT_EQ(at, kT0 + 45 * kSec);
}

TEST(RateGate, CooldownBlocksAndReleasesExactlyAtItsEnd) {
  RateGate g(FlowLimits{}, kT0);
  uint64_t at = 0;
  g.cool_down_until(kT0 + 2 * kSec);
  EXPECT_TRUE(g.cooling(kT0));
  EXPECT_EQ(g.cooldown_end(), kT0 + 2 * kSec);
  ASSERT_EQ(g.acquire(10, kT0, &at), Verdict::wait);
  EXPECT_EQ(at, kT0 + 2 * kSec);
  ASSERT_EQ(g.acquire(10, kT0 + 2 * kSec - 1, &at), Verdict::wait);
  EXPECT_EQ(at, kT0 + 2 * kSec);
  // Never shortened.
  g.cool_down_until(kT0 + kSec);
  EXPECT_EQ(g.cooldown_end(), kT0 + 2 * kSec);
  EXPECT_TRUE(g.cooling(kT0 + 2 * kSec - 1));
  EXPECT_FALSE(g.cooling(kT0 + 2 * kSec));
  EXPECT_EQ(g.acquire(10, kT0 + 2 * kSec, &at), Verdict::go);
  // Extended.
  g.cool_down_until(kT0 + 5 * kSec);
  ASSERT_EQ(g.acquire(10, kT0 + 3 * kSec, &at), Verdict::wait);
  EXPECT_EQ(at, kT0 + 5 * kSec);
}

TEST(RateGate, CooldownAndBucketTogetherWaitForTheLater) {
  RateGate g(requests(1, 10000), kT0);
  uint64_t at = 0;
  ASSERT_EQ(g.acquire(0, kT0, &at), Verdict::go);
  g.cool_down_until(kT0 + 3 * kSec);
  ASSERT_EQ(g.acquire(0, kT0, &at), Verdict::wait);
  EXPECT_EQ(at, kT0 + 10 * kSec);
  g.cool_down_until(kT0 + 12 * kSec);
  ASSERT_EQ(g.acquire(0, kT0 + 10 * kSec, &at), Verdict::wait);
  EXPECT_EQ(at, kT0 + 12 * kSec);
}

TEST(RateGate, ObserveLimitsRemainingZeroWithResetCoolsDown) {
  RateGate g(requests(100, 60000), kT0);
  uint64_t at = 0;
  ASSERT_EQ(g.acquire(0, kT0, &at), Verdict::go);
  g.observe_limits(0, 1500 * kMs, -1, -1, kT0);
  EXPECT_TRUE(g.cooling(kT0));
  EXPECT_EQ(g.cooldown_end(), kT0 + 1500 * kMs);
  ASSERT_EQ(g.acquire(0, kT0, &at), Verdict::wait);
  EXPECT_EQ(at, kT0 + 1500 * kMs);
  // The bucket was clamped to 0 too: 600 ms per request from there, and
  // cooldown end is later.
  ASSERT_EQ(g.acquire(0, kT0 + 1500 * kMs, &at), Verdict::go);
  ASSERT_EQ(g.acquire(0, kT0 + 1500 * kMs, &at), Verdict::go);
  ASSERT_EQ(g.acquire(0, kT0 + 1500 * kMs, &at), Verdict::wait);
  EXPECT_EQ(at, kT0 + 1800 * kMs);
}

TEST(RateGate, ObserveLimitsTokensOnlyTightensAndAbsentChangesNothing) {
  RateGate g(tokens(60000), kT0);  // 1000 per second
  uint64_t at = 0;
  g.observe_limits(-1, -1, -1, -1, kT0);
  g.observe_limits(-1, -1, 1000000, 5 * kSec, kT0);  // more than we have: ignored
  EXPECT_FALSE(g.cooling(kT0));
  ASSERT_EQ(g.acquire(50000, kT0, &at), Verdict::go);
  g.observe_limits(-1, -1, 100, 5 * kSec, kT0);
  EXPECT_FALSE(g.cooling(kT0));  // not zero: clamp only
  ASSERT_EQ(g.acquire(500, kT0, &at), Verdict::wait);
  EXPECT_EQ(at, kT0 + 400 * kMs);
  // Remaining 0 without a reset clamps but cannot cool down.
  g.observe_limits(-1, -1, 0, -1, kT0);
  EXPECT_FALSE(g.cooling(kT0));
  ASSERT_EQ(g.acquire(500, kT0, &at), Verdict::wait);
  EXPECT_EQ(at, kT0 + 500 * kMs);
  // Tokens at 0 with a reset cool the key down.
  g.observe_limits(7, -1, 0, 2 * kSec, kT0);
  ASSERT_EQ(g.acquire(1, kT0 + kSec, &at), Verdict::wait);
  EXPECT_EQ(at, kT0 + 2 * kSec);
  // Headers still cool a key that has no configured limits.
  RateGate free(FlowLimits{}, kT0);
  free.observe_limits(0, kSec, -1, -1, kT0);
  EXPECT_EQ(free.acquire(1, kT0, &at), Verdict::wait);
  EXPECT_EQ(at, kT0 + kSec);
  // A reset far beyond the clock saturates instead of wrapping to the past.
  free.observe_limits(0, INT64_MAX, -1, -1, UINT64_MAX - 10);
  EXPECT_EQ(free.cooldown_end(), UINT64_MAX);
}

FlowLimits breaker(int64_t threshold, int64_t pause_ms) {
  FlowLimits l;
  l.breaker_threshold = threshold;
  l.breaker_pause_ms = pause_ms;
  return l;
}

TEST(RateGate, BreakerOpensAfterThresholdConsecutiveFailures) {
  RateGate g(breaker(3, 5000), kT0);
  uint64_t at = 0;
  g.record_failure(kT0);
  g.record_failure(kT0);
  g.record_success();  // the run is broken
  g.record_failure(kT0);
  g.record_failure(kT0);
  EXPECT_FALSE(g.breaker_open(kT0));
  EXPECT_EQ(g.acquire(0, kT0, &at), Verdict::go);
  const uint64_t t = kT0 + kSec;
  g.record_failure(t);
  EXPECT_TRUE(g.breaker_open(t));
  ASSERT_EQ(g.acquire(0, t, &at), Verdict::reject);
  EXPECT_EQ(at, t + 5 * kSec);
  // Late failures of attempts already under way do not stretch the pause.
  g.record_failure(t + kSec);
  ASSERT_EQ(g.acquire(0, t + 5 * kSec - 1, &at), Verdict::reject);
  EXPECT_EQ(at, t + 5 * kSec);
  EXPECT_TRUE(g.breaker_open(t + 5 * kSec - 1));
  EXPECT_FALSE(g.breaker_open(t + 5 * kSec));
}

TEST(RateGate, HalfOpenLetsOneProbeAndSuccessCloses) {
  RateGate g(breaker(2, 5000), kT0);
  uint64_t at = 0;
  g.record_failure(kT0);
  g.record_failure(kT0);
  const uint64_t half = kT0 + 5 * kSec;
  ASSERT_EQ(g.acquire(7, half, &at), Verdict::go);  // the probe
  for (int i = 0; i < 3; ++i) {
    const uint64_t now = half + uint64_t(i) * kSec;
    ASSERT_EQ(g.acquire(7, now, &at), Verdict::wait);
    EXPECT_EQ(at, now + 5 * kSec);
  }
  g.record_success();
  EXPECT_FALSE(g.breaker_open(half));
  for (int i = 0; i < 5; ++i) ASSERT_EQ(g.acquire(7, half + 3 * kSec, &at), Verdict::go);
  // The run starts from zero again.
  g.record_failure(half + 3 * kSec);
  EXPECT_FALSE(g.breaker_open(half + 3 * kSec));
}

TEST(RateGate, FailedProbeReopensForAnotherPause) {
  RateGate g(breaker(1, 2000), kT0);
  uint64_t at = 0;
  g.record_failure(kT0);
  ASSERT_EQ(g.acquire(0, kT0 + 2 * kSec, &at), Verdict::go);
  const uint64_t t = kT0 + 3 * kSec;
  g.record_failure(t);
  EXPECT_TRUE(g.breaker_open(t));
  ASSERT_EQ(g.acquire(0, t, &at), Verdict::reject);
  EXPECT_EQ(at, t + 2 * kSec);
  ASSERT_EQ(g.acquire(0, t + 2 * kSec, &at), Verdict::go);  // a new probe
  ASSERT_EQ(g.acquire(0, t + 2 * kSec, &at), Verdict::wait);
  g.record_success();
  EXPECT_EQ(g.acquire(0, t + 2 * kSec, &at), Verdict::go);
}

TEST(RateGate, ProbeThatMustWaitForItsBucketIsNotSpent) {
  FlowLimits l = breaker(1, 1000);
  l.requests_per_period = 1;
  l.period_ms = 10000;
  RateGate g(l, kT0);
  uint64_t at = 0;
  ASSERT_EQ(g.acquire(0, kT0, &at), Verdict::go);
  g.record_failure(kT0);
  // Half-open at +1 s, but the request bucket is empty until +10 s.
  ASSERT_EQ(g.acquire(0, kT0 + kSec, &at), Verdict::wait);
  EXPECT_EQ(at, kT0 + 10 * kSec);
  ASSERT_EQ(g.acquire(0, kT0 + 10 * kSec, &at), Verdict::go);
  ASSERT_EQ(g.acquire(0, kT0 + 10 * kSec, &at), Verdict::wait);
  EXPECT_EQ(at, kT0 + 11 * kSec);
}

TEST(RateGate, ZeroThresholdNeverOpensAndZeroPauseNeverSpins) {
  RateGate never(breaker(0, 5000), kT0);
  uint64_t at = 0;
  for (int i = 0; i < 1000; ++i) never.record_failure(kT0);
  EXPECT_FALSE(never.breaker_open(kT0));
  EXPECT_EQ(never.acquire(0, kT0, &at), Verdict::go);

  RateGate g(breaker(1, 0), kT0);
  g.record_failure(kT0);
  EXPECT_FALSE(g.breaker_open(kT0));  // a zero pause half-opens at once
  ASSERT_EQ(g.acquire(0, kT0, &at), Verdict::go);
  ASSERT_EQ(g.acquire(0, kT0, &at), Verdict::wait);
  EXPECT_EQ(at, kT0 + kMs);
}

TEST(RateGate, SettleChargesAndCreditsTheTokenBucket) {
  RateGate g(tokens(6000), kT0);  // 100 per second
  uint64_t at = 0;
  ASSERT_EQ(g.acquire(5000, kT0, &at), Verdict::go);
  ASSERT_EQ(g.acquire(4000, kT0, &at), Verdict::wait);
  g.settle(5000, -1, kT0);  // usage unknown: nothing changes
  ASSERT_EQ(g.acquire(4000, kT0, &at), Verdict::wait);
  g.settle(5000, 1000, kT0);  // 4000 back
  ASSERT_EQ(g.acquire(4000, kT0, &at), Verdict::go);
  EXPECT_EQ(g.acquire(1000, kT0, &at), Verdict::go);
  // The answer cost 3000 more than estimated: 30 s of debt.
  g.settle(1000, 4000, kT0);
  ASSERT_EQ(g.acquire(100, kT0, &at), Verdict::wait);
  EXPECT_EQ(at, kT0 + 31 * kSec);
  // Equal estimate and usage change nothing.
  g.settle(700, 700, kT0);
  ASSERT_EQ(g.acquire(100, kT0, &at), Verdict::wait);
  EXPECT_EQ(at, kT0 + 31 * kSec);
}

TEST(RateGate, RefundGivesBackBothUnits) {
  FlowLimits l = requests(1, 60000);
  l.tokens_per_minute = 6000;
  RateGate g(l, kT0);
  uint64_t at = 0;
  ASSERT_EQ(g.acquire(6000, kT0, &at), Verdict::go);
  ASSERT_EQ(g.acquire(6000, kT0, &at), Verdict::wait);
  g.refund(6000, kT0);
  EXPECT_EQ(g.acquire(6000, kT0, &at), Verdict::go);
  // A refund never lifts a bucket above its capacity.
  g.refund(6000, kT0);
  g.refund(6000, kT0);
  ASSERT_EQ(g.acquire(6000, kT0, &at), Verdict::go);
  EXPECT_EQ(g.acquire(1, kT0, &at), Verdict::wait);
}

TEST(RateHeaders, ResetDurationsInGoSyntax) {
  EXPECT_EQ(parse_reset_duration_ns("1s"), int64_t(kSec));
  EXPECT_EQ(parse_reset_duration_ns("6m0s"), int64_t(360 * kSec));
  EXPECT_EQ(parse_reset_duration_ns("20ms"), int64_t(20 * kMs));
  EXPECT_EQ(parse_reset_duration_ns("1h2m3.5s"), int64_t(3723 * kSec + 500 * kMs));
  EXPECT_EQ(parse_reset_duration_ns("0.5s"), int64_t(500 * kMs));
  EXPECT_EQ(parse_reset_duration_ns(".5s"), int64_t(500 * kMs));
  EXPECT_EQ(parse_reset_duration_ns("2m59.56s"), int64_t(179 * kSec + 560 * kMs));
  EXPECT_EQ(parse_reset_duration_ns("0.1s"), 100000000);  // exact, no float rounding
  EXPECT_EQ(parse_reset_duration_ns("250us"), 250000);
  EXPECT_EQ(parse_reset_duration_ns("250\u00b5s"), 250000);
  EXPECT_EQ(parse_reset_duration_ns("7ns"), 7);
  EXPECT_EQ(parse_reset_duration_ns("1.5ms"), 1500000);
  EXPECT_EQ(parse_reset_duration_ns("0"), 0);
  EXPECT_EQ(parse_reset_duration_ns("0s"), 0);
  EXPECT_EQ(parse_reset_duration_ns(" 3s "), int64_t(3 * kSec));
  EXPECT_EQ(parse_reset_duration_ns("1.123456789123456789123s"), 1123456789);
  EXPECT_EQ(parse_reset_duration_ns("2562047h47m16.854775807s"), INT64_MAX);
}

TEST(RateHeaders, MalformedResetDurations) {
  for (const char* bad : {"", " ", "s", "1", "60", "1x", "1 s", "-1s", "+1s", "1.s.", "1..5s", ".s",
                          "1s2", "1S", "1sec", "1h 2m", "2562047h47m16.854775808s", "99999999999999999999s",
                          "9223372036854775807h", "2024-01-01T00:00:00Z"}) {
    EXPECT_EQ(parse_reset_duration_ns(bad), -1) << bad;
  }
}

TEST(RateHeaders, Counts) {
  EXPECT_EQ(parse_count("59"), 59);
  EXPECT_EQ(parse_count(" 12 "), 12);
  EXPECT_EQ(parse_count("\t0"), 0);
  EXPECT_EQ(parse_count("9223372036854775807"), INT64_MAX);
  for (const char* bad : {"", "  ", "-1", "+5", "1.5", "12a", "a12", "1 2", "9223372036854775808", "0x10"}) {
    EXPECT_EQ(parse_count(bad), -1) << bad;
  }
}

}  // namespace
}  // namespace barrage
