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

TEST(RedisClockMap, TightestBoundWinsAndSlowAnswersDoNotMoveIt) {
  RedisClockMap m;
  // Redis's clock reads 5,000 s when ours reads kT0 + 0.3 ms.
  const int64_t r0 = 5000000000;
  auto redis_at = [&](uint64_t local_ns) { return r0 + int64_t(local_ns - kT0) / 1000 - 300; };
  // Asked at kT0, answered 2 ms later: Redis ran it at +1 ms. First answer: its arrival bounds it.
  EXPECT_EQ(m.map(kT0, kT0 + 2 * kMs, redis_at(kT0 + 1 * kMs)), kT0 + 2 * kMs);
  EXPECT_EQ(m.error_ns(kT0 + 2 * kMs), 2 * kMs);
  // A quick one (ran 0.1 ms before it came back) tightens the estimate.
  const uint64_t t1 = kT0 + 100 * kMs;
  EXPECT_EQ(m.map(t1, t1 + 200000, redis_at(t1 + 100000)), t1 + 200000);
  // One that came back 300 ms late is mapped where Redis ran it, not where it arrived.
  const uint64_t t2 = kT0 + 200 * kMs;
  const uint64_t mapped = m.map(t2, t2 + 300 * kMs, redis_at(t2 + 100000));
  // (0.2 ms of error, plus 1,000 ppm of drift allowed over the 400 ms since.)
  EXPECT_GE(mapped, t2 + 100000);
  EXPECT_LE(mapped, t2 + 1 * kMs);
  EXPECT_LE(m.error_ns(t2 + 300 * kMs), 1 * kMs);
  // Redis's clock steps back 50 ms: the first answer that proves the
  // estimate too low resets it (its own arrival bounds the mapping).
  const uint64_t t3 = kT0 + 300 * kMs;
  EXPECT_EQ(m.map(t3, t3 + 1 * kMs, redis_at(t3 + 500000) - 50000), t3 + 1 * kMs);
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

TEST(LeaseSchedule, ForfeitGivesTheEarliestUnitsFirst) {
  LeaseSchedule s;
  s.add(kT0, -5000, 2, 5.0 * kMs);  // due now and at +5 ms
  s.add(kT0, 5000, 3, 5.0 * kMs);   // +10, +15, +20 ms
  EXPECT_EQ(s.forfeit(3), 3);
  EXPECT_EQ(s.held(), 2);
  // The debt took the units due now, +5 and +10 ms: the next goes at +15 ms.
  EXPECT_EQ(s.available(kT0), 0);
  EXPECT_EQ(s.ready_at(1, kT0), kT0 + 15 * kMs);
  EXPECT_EQ(s.available(kT0 + 15 * kMs), 1);
  EXPECT_EQ(s.forfeit(3), 2);
  EXPECT_EQ(s.held(), 0);
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
  ans.requests = 40;  // one every 5 ms
  ans.requests_base_us = 0;
  ans.live = 4;
  q.answered(ans, kT0);
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(q.try_take(0, kT0 + uint64_t(i + 1) * 5 * kMs));
  // 200/s seen: 1.25 x 2 s of it is 500, but 1000 waiting and 4 live cap it
  // at a quarter of the horizon's 400 units (2 s at 200/s), so that all
  // four fit in it.
  a = q.ask(1000, 0, kT0 + 200 * kMs);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->requests.max, 100);
}

TEST(SharedQuota, AsksAgainOnlyWhenNearlyOut) {
  SharedQuota q(limits_200_per_s_burst_20(), SharedTuning{}, kT0);
  ASSERT_TRUE(q.ask(1, 0, kT0));
  LeaseAnswer ans;
  ans.requests = 60;
  ans.requests_base_us = -100000;  // 20 due now, then one every 5 ms
  ans.live = 4;
  ans.rtt_ns = 1 * kMs;
  q.answered(ans, kT0);
  // Spend at 200/s: no ask while more than two round trips and 5 ms of
  // units (at the rate seen) are held.
  uint64_t now = kT0;
  int taken = 0, asked_with_held = -1;
  for (uint64_t ms = 0; ms <= 300 && asked_with_held < 0; ++ms) {
    now = kT0 + ms * kMs;
    while (q.try_take(0, now)) ++taken;
    if (q.next_ask_at(100, 0, now) <= now) asked_with_held = 60 - taken;
  }
  EXPECT_GE(asked_with_held, 0);
  EXPECT_LE(asked_with_held, 3);
}

TEST(SharedQuota, UnitsAreMappedFromRedisClockNotFromTheArrival) {
  SharedQuota q(limits_200_per_s_burst_20(), SharedTuning{}, kT0);
  ASSERT_TRUE(q.ask(1, 0, kT0));
  // The answer arrives 300 ms after Redis ran the script (a process that
  // did not poll): its burst units are long stale, the rest came due
  // meanwhile and are stale too but for the last 10 ms.
  LeaseAnswer ans;
  ans.requests = 80;
  ans.requests_base_us = -100000;
  ans.live = 1;
  ans.anchor_ns = kT0 + 1 * kMs;
  ans.clock_error_ns = 1 * kMs;
  ans.rtt_ns = 301 * kMs;
  const uint64_t now = kT0 + 301 * kMs;
  q.answered(ans, now);
  int granted = 0;
  while (q.try_take(0, now)) ++granted;
  // Units due at +1 ms + 5 ms * (j - 20) for j <= 80: those after
  // now - 10 ms of slack (j from 79 on) may go.
  EXPECT_EQ(granted, 2);
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
  ans.requests = 100;  // one due now, then one every 5 ms up to +495 ms
  ans.requests_base_us = -5000;
  q.answered(ans, kT0);
  ASSERT_TRUE(q.try_take(0, kT0));
  EXPECT_EQ(q.next_ask_at(0, 0, kT0), kT0 + t.idle_return_ns);
  auto a = q.ask(0, 0, kT0 + t.idle_return_ns);
  ASSERT_TRUE(a);
  // Those still due after +250 ms go back (units 52..100); those whose
  // instant passed do not (next test).
  EXPECT_EQ(a->requests.adjust, -49);
  EXPECT_EQ(a->requests.max, 0);
}

TEST(SharedQuota, UnitsWhoseInstantPassedDoNotGoBack) {
  // The bucket refilled past them: returned, they would be granted twice.
  SharedTuning t;
  SharedQuota q(limits_200_per_s_burst_20(), t, kT0);
  ASSERT_TRUE(q.ask(1, 0, kT0));
  LeaseAnswer ans;
  ans.requests = 200;  // 20 due now, one every 5 ms up to +900 ms
  ans.requests_base_us = -100000;
  ans.rtt_ns = 1 * kMs;
  ans.clock_error_ns = 1 * kMs;
  q.answered(ans, kT0);
  ASSERT_TRUE(q.try_take(0, kT0));
  const uint64_t idle = kT0 + t.idle_return_ns;  // +250 ms
  auto a = q.ask(0, 0, idle);
  ASSERT_TRUE(a);
  // Due after +252 ms (error and a round trip): units 71..200.
  EXPECT_EQ(a->requests.adjust, -130);
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
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(q.try_take(0, kT0));
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
