// SharedQuota's decisions with time passed in: when a key asks Redis, for
// how much, what it gives back, the local share while Redis is away, rejoin.
#include "flow/shared_quota.hpp"

#include <gtest/gtest.h>

namespace barrage {
namespace {

constexpr uint64_t kMs = 1000000;
constexpr uint64_t kT0 = 1000000 * kMs;

FlowLimits limits_200_per_s_burst_20() {
  FlowLimits l;
  l.requests_per_period = 200;
  l.period_ms = 1000;
  l.request_burst = 20;
  return l;
}

TEST(LeaseSchedule, UnitsComeDueAtTheirInstants) {
  LeaseSchedule s;
  // base -20 ms at 5 ms a unit: units 1..4 are due at once, unit 5 at +5 ms.
  s.add(kT0, -20000, 10, 5.0 * kMs);
  EXPECT_EQ(s.held(), 10);
  EXPECT_EQ(s.available(kT0), 4);
  EXPECT_EQ(s.ready_at(5, kT0), kT0 + 5 * kMs);
  EXPECT_EQ(s.ready_at(11, kT0), UINT64_MAX);
  s.take(4, kT0);
  EXPECT_EQ(s.available(kT0), 0);
  EXPECT_EQ(s.available(kT0 + 10 * kMs), 2);
  EXPECT_EQ(s.held(), 6);
  EXPECT_EQ(s.clear(), 6);
  EXPECT_EQ(s.held(), 0);
}

TEST(LeaseSchedule, SecondLeaseIsSpentAfterTheFirst) {
  LeaseSchedule s;
  s.add(kT0, -5000, 1, 5.0 * kMs);  // one unit, due now
  s.add(kT0, 0, 2, 5.0 * kMs);      // due at +5 ms and +10 ms
  EXPECT_EQ(s.ready_at(2, kT0), kT0 + 5 * kMs);
  s.take(1, kT0);
  EXPECT_EQ(s.ready_at(2, kT0), kT0 + 10 * kMs);
}

TEST(LeaseSchedule, ForfeitGivesTheLatestUnitsFirst) {
  LeaseSchedule s;
  s.add(kT0, -5000, 2, 5.0 * kMs);  // due now and at +5 ms
  s.add(kT0, 5000, 3, 5.0 * kMs);   // +10, +15, +20 ms
  EXPECT_EQ(s.forfeit(4), 4);
  EXPECT_EQ(s.held(), 1);
  EXPECT_EQ(s.available(kT0), 1);  // the first unit stays
  EXPECT_EQ(s.forfeit(3), 1);
}

TEST(LeaseSchedule, UnitsNobodyTookExpire) {
  LeaseSchedule s;
  s.add(kT0, -100000, 30, 5.0 * kMs);  // 20 due on arrival, then one every 5 ms
  s.expire(kT0 - 1);                   // due on arrival: nothing is stale before it
  EXPECT_EQ(s.held(), 30);
  s.expire(kT0 + 10 * kMs);  // the 20 burst units and the two since
  EXPECT_EQ(s.held(), 8);
  EXPECT_EQ(s.available(kT0 + 10 * kMs), 0);
}

TEST(SharedQuota, UsageAboveTheEstimateIsPaidFromTheLease) {
  FlowLimits l;
  l.tokens_per_minute = 60000;  // 1000/s, 1 ms a token
  SharedQuota q(l, SharedTuning{}, kT0);
  ASSERT_TRUE(q.ask(1, 100, kT0));
  LeaseAnswer ans;
  ans.tokens = 500;
  ans.tokens_base_us = -60000000;  // a full bucket
  q.answered(ans, kT0);
  ASSERT_TRUE(q.try_take(100, kT0));
  q.settle(100, 450, kT0);  // 350 more than estimated: from the 400 held
  EXPECT_TRUE(q.try_take(50, kT0));
  EXPECT_FALSE(q.try_take(1, kT0));
  q.settle(10, 200, kT0);  // 190 more, none held: owed to Redis
  auto a = q.ask(0, 0, kT0 + 2000 * kMs);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->tokens.adjust, 190);
}

// Regression: tokens held but fewer than the first waiter needs, and more
// than half a (rate-sized) lease: the key must still ask, or it waits for
// its attempt timeout.
TEST(SharedQuota, TokensShortOfTheHeadRequestAsk) {
  FlowLimits l;
  l.tokens_per_minute = 60000;
  SharedQuota q(l, SharedTuning{}, kT0);
  ASSERT_TRUE(q.ask(1, 10, kT0));
  LeaseAnswer ans;
  ans.tokens = 10;
  ans.tokens_base_us = -60000000;
  q.answered(ans, kT0);
  ASSERT_TRUE(q.try_take(5, kT0));  // 5 held, the next request wants 23
  EXPECT_EQ(q.next_ask_at(1, 23, kT0), kT0);
  auto a = q.ask(1, 23, kT0);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->tokens.min, 18);
}

TEST(SharedQuota, WaitingRequestAsksForOneAtLeast) {
  SharedQuota q(limits_200_per_s_burst_20(), SharedTuning{}, kT0);
  EXPECT_DOUBLE_EQ(q.request_interval_us(), 5000);
  EXPECT_EQ(q.request_burst(), 20);
  EXPECT_FALSE(q.try_take(0, kT0));
  EXPECT_EQ(q.ready_at(0, kT0), UINT64_MAX);  // only an answer can tell
  auto a = q.ask(3, 0, kT0);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->requests.min, 1);
  EXPECT_EQ(a->requests.max, 3);  // what waits; no rate known yet
  EXPECT_EQ(a->tokens.max, 0);    // no token limit
  EXPECT_TRUE(q.asking());
  EXPECT_FALSE(q.ask(3, 0, kT0));  // one round trip at a time
  LeaseAnswer ans;
  ans.requests = 3;
  ans.requests_base_us = -100000;  // a full bucket: all due now
  ans.live = 1;
  EXPECT_EQ(q.answered(ans, kT0), 0);
  EXPECT_TRUE(q.try_take(0, kT0));
  EXPECT_TRUE(q.try_take(0, kT0));
  EXPECT_TRUE(q.try_take(0, kT0));
  EXPECT_FALSE(q.try_take(0, kT0));
}

TEST(SharedQuota, LeaseFollowsOwnRateCappedAtFairShare) {
  SharedQuota q(limits_200_per_s_burst_20(), SharedTuning{}, kT0);
  auto a = q.ask(1, 0, kT0);
  ASSERT_TRUE(a);
  LeaseAnswer ans;
  ans.requests = 1;
  ans.requests_base_us = -5000;
  ans.live = 4;
  q.answered(ans, kT0);
  ASSERT_TRUE(q.try_take(0, kT0));
  // 1000 waiting: capped at a quarter of the horizon's 200 units.
  a = q.ask(1000, 0, kT0 + 200 * kMs);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->requests.max, 50);
}

TEST(SharedQuota, RedisSaysWaitThenNoAskBeforeIt) {
  SharedQuota q(limits_200_per_s_burst_20(), SharedTuning{}, kT0);
  ASSERT_TRUE(q.ask(1, 0, kT0));
  LeaseAnswer ans;
  ans.wait_us = 30000;
  q.answered(ans, kT0);
  EXPECT_EQ(q.next_ask_at(1, 0, kT0), kT0 + 30 * kMs);
  EXPECT_FALSE(q.ask(1, 0, kT0 + 29 * kMs));
  EXPECT_TRUE(q.ask(1, 0, kT0 + 30 * kMs));
}

TEST(SharedQuota, IdleUnitsGoBack) {
  SharedTuning t;
  SharedQuota q(limits_200_per_s_burst_20(), t, kT0);
  ASSERT_TRUE(q.ask(1, 0, kT0));
  LeaseAnswer ans;
  ans.requests = 10;
  ans.requests_base_us = -100000;
  q.answered(ans, kT0);
  ASSERT_TRUE(q.try_take(0, kT0));
  EXPECT_EQ(q.next_ask_at(0, 0, kT0), kT0 + t.idle_return_ns);
  auto a = q.ask(0, 0, kT0 + t.idle_return_ns);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->requests.adjust, -9);
  EXPECT_EQ(a->requests.max, 0);
}

TEST(SharedQuota, RefundsAndUsageTravelWithTheNextAsk) {
  FlowLimits l = limits_200_per_s_burst_20();
  l.tokens_per_minute = 60000;
  SharedQuota q(l, SharedTuning{}, kT0);
  q.refund(100, kT0);
  q.settle(500, 800, kT0);  // 300 more than estimated
  auto a = q.ask(1, 50, kT0);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->requests.adjust, -1);
  EXPECT_EQ(a->tokens.adjust, -100 + 300);
  EXPECT_EQ(a->tokens.min, 50);
}

TEST(SharedQuota, CooldownAndClampAreSentAtOnce) {
  SharedQuota q(limits_200_per_s_burst_20(), SharedTuning{}, kT0);
  EXPECT_EQ(q.next_ask_at(0, 0, kT0), UINT64_MAX);
  q.cool_down(2000);
  q.clamp(3, 7);  // no token bucket: the token count is ignored
  EXPECT_EQ(q.next_ask_at(0, 0, kT0), kT0);
  auto a = q.ask(0, 0, kT0);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->cooldown_ms, 2000);
  EXPECT_EQ(a->requests.clamp, 3);
  EXPECT_EQ(a->tokens.clamp, -1);
  LeaseAnswer ans;
  ans.cooldown_ms = 1990;
  EXPECT_EQ(q.answered(ans, kT0), 1990);  // the caller cools the key locally
}

TEST(SharedQuota, FailureFallsBackToLocalShareThenRejoins) {
  SharedTuning t;
  SharedQuota q(limits_200_per_s_burst_20(), t, kT0);
  ASSERT_TRUE(q.ask(1, 0, kT0));
  LeaseAnswer ans;
  ans.requests = 5;
  ans.requests_base_us = -100000;
  ans.live = 4;
  q.answered(ans, kT0);
  ASSERT_TRUE(q.ask(100, 0, kT0));
  q.failed(kT0 + 250 * kMs);
  EXPECT_TRUE(q.fallen_back());
  uint64_t now = kT0 + 250 * kMs;
  // The lease is dropped and the share (50/s, burst 5) starts empty.
  EXPECT_FALSE(q.try_take(0, now));
  EXPECT_EQ(q.ready_at(0, now), now + 20 * kMs);
  int granted = 0;
  for (uint64_t ms = 0; ms <= 1000; ++ms)
    while (q.try_take(0, now + ms * kMs)) ++granted;
  EXPECT_EQ(granted, 50);  // a quarter of 200/s over 1 s
  // Rejoin attempts every rejoin_ns, with nothing else asked of it.
  EXPECT_EQ(q.next_ask_at(0, 0, now), now + t.rejoin_ns);
  uint64_t later = now + t.rejoin_ns;
  auto a = q.ask(0, 0, later);
  ASSERT_TRUE(a);
  LeaseAnswer back;
  back.requests = 2;
  back.requests_base_us = -10000;
  back.live = 4;
  q.answered(back, later);
  EXPECT_FALSE(q.fallen_back());
  EXPECT_TRUE(q.try_take(0, later));
  EXPECT_TRUE(q.try_take(0, later));
  EXPECT_FALSE(q.try_take(0, later));
}

}  // namespace
}  // namespace barrage
