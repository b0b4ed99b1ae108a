// Unit tests for TimerWheel: exact firing ticks on every level, cancel and
// re-arm, callbacks that mutate the wheel, wake-up hints, and a randomized
// comparison against a std::multiset reference model.
#include "loop/timer_wheel.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <utility>
#include <vector>

namespace barrage {
namespace {

struct Fired {
  int id;
  uint64_t at;  // the now_ms of the advance() that fired it
  bool operator==(const Fired&) const = default;
};

// A wheel plus timers that log (id, now) when they fire and may run an
// extra action from inside the callback.
class Harness {
 public:
  struct Probe {
    Harness* h = nullptr;
    int id = 0;
    Timer timer;
    std::function<void(Probe&)> action;
  };

  explicit Harness(uint64_t start) : now_(start), wheel_(std::make_unique<TimerWheel>(start)) {}

  Probe& probe(int id, std::function<void(Probe&)> action = {}) {
    Probe& p = probes_.emplace_back();
    p.h = this;
    p.id = id;
    p.timer.fn = &Harness::on_fire;
    p.timer.ctx = &p;
    p.action = std::move(action);
    return p;
  }

  size_t advance(uint64_t now) {
    now_ = now;
    return wheel_->advance(now);
  }

  // Sleeps like the reactor: straight to each wake-up, never past target,
  // then to target itself. Returns the number of advance() calls.
  size_t run_until(uint64_t target) {
    size_t calls = 0;
    for (;;) {
      const uint64_t wake = wheel_->next_wake();
      if (wake > target) break;
      EXPECT_LT(++calls, 100000u) << "wake-ups do not make progress";
      if (calls >= 100000) break;
      advance(std::max(now_, wake));
    }
    advance(target);
    return calls + 1;
  }

  TimerWheel& wheel() { return *wheel_; }
  uint64_t now() const { return now_; }
  std::vector<Fired>& log() { return log_; }

 private:
  static void on_fire(void* ctx) {
    auto& p = *static_cast<Probe*>(ctx);
    EXPECT_FALSE(p.timer.armed()) << "fired while still linked";
    p.h->log_.push_back({p.id, p.h->now_});
    if (p.action) p.action(p);
  }

  uint64_t now_;
  std::vector<Fired> log_;
  std::deque<Probe> probes_;  // stable addresses; must outlive the wheel
  std::unique_ptr<TimerWheel> wheel_;
};

constexpr uint64_t kBase = 1'000'003;  // deliberately not aligned to any level
const std::vector<uint64_t> kLevelDeltas = {1, 63, 64, 65, 4095, 4096, 262144 + 7, (uint64_t{1} << 40) + 3};

TEST(TimerWheel, EmptyWheel) {
  TimerWheel w(kBase);
  EXPECT_EQ(w.size(), 0u);
  EXPECT_EQ(w.next_wake(), UINT64_MAX);
  EXPECT_EQ(w.timeout_ms(kBase), -1);
  EXPECT_EQ(w.advance(kBase + 100000), 0u);
  EXPECT_EQ(w.next_wake(), UINT64_MAX);
  EXPECT_EQ(w.timeout_ms(kBase + 100000), -1);
}

TEST(TimerWheel, FiresAcrossAllLevelsInOrderAtExactTick) {
  for (uint64_t base : {uint64_t{0}, kBase, (uint64_t{1} << 50) - 5}) {
    Harness h(base);
    // Armed in reverse so that order comes from the wheel, not from arming.
    for (int i = static_cast<int>(kLevelDeltas.size()) - 1; i >= 0; --i) {
      auto& p = h.probe(i);
      h.wheel().arm(p.timer, base + kLevelDeltas[i]);
    }
    EXPECT_EQ(h.wheel().size(), kLevelDeltas.size());
    const size_t calls = h.run_until(base + kLevelDeltas.back() + 10);
    // Cascade points are a few dozen per level, not one per ms.
    EXPECT_LT(calls, 11u * 64u * kLevelDeltas.size());
    ASSERT_EQ(h.log().size(), kLevelDeltas.size()) << "base " << base;
    for (size_t i = 0; i < kLevelDeltas.size(); ++i)
      EXPECT_EQ(h.log()[i], (Fired{static_cast<int>(i), base + kLevelDeltas[i]})) << "base " << base;
    EXPECT_EQ(h.wheel().size(), 0u);
    EXPECT_EQ(h.wheel().next_wake(), UINT64_MAX);
  }
}

TEST(TimerWheel, NotEarlyAndNotLateOneJustBeforeAndAt) {
  // For each level: advancing to expiry - 1 fires nothing, expiry fires it.
  for (uint64_t d : kLevelDeltas) {
    Harness h(kBase);
    auto& p = h.probe(1);
    h.wheel().arm(p.timer, kBase + d);
    EXPECT_LE(h.wheel().next_wake(), kBase + d);
    EXPECT_EQ(h.advance(kBase + d - 1), 0u) << d;
    EXPECT_TRUE(h.log().empty()) << d;
    EXPECT_EQ(h.wheel().next_wake(), kBase + d) << d;
    EXPECT_EQ(h.wheel().timeout_ms(kBase + d - 1), 1) << d;
    EXPECT_EQ(h.advance(kBase + d), 1u) << d;
    ASSERT_EQ(h.log().size(), 1u);
    EXPECT_EQ(h.log()[0].at, kBase + d);
  }
}

TEST(TimerWheel, AdvanceEveryMsFiresExactlyOnTime) {
  // Expiries around the level-1 and level-2 boundaries and in between, from
  // an unaligned start, advancing one ms at a time across three level-2 slots.
  const uint64_t start = 4090;
  Harness h(start);
  std::vector<uint64_t> expiries;
  for (uint64_t e = start; e < start + 3 * 4096 + 200; e += 37) expiries.push_back(e);
  for (uint64_t k = 1; k <= 3; ++k)
    for (int64_t off : {-65, -64, -63, -1, 0, 1, 63, 64, 65}) {
      const auto e = static_cast<uint64_t>(static_cast<int64_t>(k * 4096) + off);
      if (e >= start) expiries.push_back(e);
    }
  expiries.push_back(start + 3 * 4096 + 150);  // beyond the last level-2 boundary crossed
  std::map<int, uint64_t> want;
  for (size_t i = 0; i < expiries.size(); ++i) {
    auto& p = h.probe(static_cast<int>(i));
    h.wheel().arm(p.timer, expiries[i]);
    want[static_cast<int>(i)] = expiries[i];
  }
  size_t fired = 0;
  for (uint64_t now = start; now <= start + 3 * 4096 + 200; ++now) fired += h.advance(now);
  EXPECT_EQ(fired, expiries.size());
  ASSERT_EQ(h.log().size(), expiries.size());
  for (const Fired& f : h.log()) EXPECT_EQ(f.at, want[f.id]) << "timer " << f.id;
  EXPECT_EQ(h.wheel().size(), 0u);
}

TEST(TimerWheel, CancelBeforeExpiry) {
  Harness h(kBase);
  auto& a = h.probe(1);
  auto& b = h.probe(2);
  h.wheel().cancel(a.timer);  // not armed: no-op
  EXPECT_EQ(h.wheel().size(), 0u);
  h.wheel().arm(a.timer, kBase + 10);
  h.wheel().arm(b.timer, kBase + 10);
  EXPECT_EQ(h.wheel().size(), 2u);
  h.wheel().cancel(a.timer);
  EXPECT_FALSE(a.timer.armed());
  EXPECT_EQ(h.wheel().size(), 1u);
  h.wheel().cancel(a.timer);  // twice: no-op
  EXPECT_EQ(h.wheel().size(), 1u);
  EXPECT_EQ(h.advance(kBase + 100), 1u);
  ASSERT_EQ(h.log().size(), 1u);
  EXPECT_EQ(h.log()[0].id, 2);
  // The last timer of a slot cancelled: the slot must read as empty again.
  h.wheel().arm(a.timer, kBase + 200);
  h.wheel().cancel(a.timer);
  EXPECT_EQ(h.wheel().next_wake(), UINT64_MAX);
  EXPECT_EQ(h.wheel().timeout_ms(h.now()), -1);
}

TEST(TimerWheel, CancelAfterCascadeMovedIt) {
  const uint64_t start = 0;
  Harness h(start);
  auto& far = h.probe(1);
  auto& keep = h.probe(2);
  h.wheel().arm(far.timer, 5000);    // level 2 at start
  h.wheel().arm(keep.timer, 5001);
  EXPECT_EQ(h.advance(4097), 0u);    // past the level-2 cascade at 4096
  EXPECT_EQ(h.advance(4995), 0u);    // past the level-1 cascade at 4992
  EXPECT_EQ(h.wheel().next_wake(), 5000u);  // now on level 0: exact
  h.wheel().cancel(far.timer);
  EXPECT_EQ(h.wheel().size(), 1u);
  EXPECT_EQ(h.wheel().next_wake(), 5001u);
  EXPECT_EQ(h.advance(6000), 1u);
  ASSERT_EQ(h.log().size(), 1u);
  EXPECT_EQ(h.log()[0], (Fired{2, 6000}));
  EXPECT_EQ(h.wheel().next_wake(), UINT64_MAX);
}

TEST(TimerWheel, RearmMovesIt) {
  Harness h(kBase);
  auto& p = h.probe(1);
  h.wheel().arm(p.timer, kBase + 100);
  h.wheel().arm(p.timer, kBase + 50);  // earlier
  EXPECT_EQ(h.wheel().size(), 1u);
  EXPECT_EQ(p.timer.expiry(), kBase + 50);
  h.run_until(kBase + 60);
  ASSERT_EQ(h.log().size(), 1u);
  EXPECT_EQ(h.log()[0].at, kBase + 50);

  h.wheel().arm(p.timer, kBase + 100);
  h.wheel().arm(p.timer, kBase + 5000);  // later, other level
  h.run_until(kBase + 4999);
  EXPECT_EQ(h.log().size(), 1u) << "fired at the old expiry";
  h.run_until(kBase + 6000);
  ASSERT_EQ(h.log().size(), 2u);
  EXPECT_EQ(h.log()[1].at, kBase + 5000);
  EXPECT_EQ(h.wheel().size(), 0u);
}

TEST(TimerWheel, ArmInThePastFiresOnNextAdvance) {
  Harness h(kBase);
  auto& a = h.probe(1);
  auto& b = h.probe(2);
  auto& c = h.probe(3);
  h.wheel().arm(a.timer, kBase - 500);  // before the wheel's start
  EXPECT_LE(h.wheel().next_wake(), kBase - 500);
  EXPECT_EQ(h.wheel().timeout_ms(kBase), 0);
  EXPECT_EQ(h.advance(kBase), 1u);
  EXPECT_EQ(h.advance(kBase + 1000), 0u);
  // Armed after advance(now) for <= now: the next advance with the same now
  // still fires them, and the reactor is told not to sleep.
  h.wheel().arm(b.timer, 0);
  h.wheel().arm(c.timer, kBase + 1000);
  EXPECT_EQ(h.wheel().timeout_ms(kBase + 1000), 0);
  EXPECT_EQ(h.advance(kBase + 1000), 2u);
  ASSERT_EQ(h.log().size(), 3u);
  EXPECT_EQ(h.log()[0], (Fired{1, kBase}));
  EXPECT_EQ(h.log()[2].at, kBase + 1000);
  EXPECT_EQ(h.wheel().size(), 0u);
}

TEST(TimerWheel, PastTimersFireBeforeLaterOnesInOneAdvance) {
  Harness h(kBase);
  auto& late = h.probe(1);
  auto& past = h.probe(2);
  h.wheel().arm(late.timer, kBase + 3);
  h.advance(kBase + 1);
  h.wheel().arm(past.timer, kBase);
  EXPECT_EQ(h.advance(kBase + 10), 2u);
  ASSERT_EQ(h.log().size(), 2u);
  EXPECT_EQ(h.log()[0].id, 2);
  EXPECT_EQ(h.log()[1].id, 1);
}

TEST(TimerWheel, PeriodicSelfRearm) {
  Harness h(kBase);
  auto& p = h.probe(1, [](Harness::Probe& self) {
    self.h->wheel().arm(self.timer, self.timer.expiry() + 10);
  });
  h.wheel().arm(p.timer, kBase + 10);
  for (uint64_t now = kBase; now <= kBase + 1000; ++now) h.advance(now);
  ASSERT_EQ(h.log().size(), 100u);
  for (size_t i = 0; i < h.log().size(); ++i) EXPECT_EQ(h.log()[i].at, kBase + 10 * (i + 1));
  EXPECT_EQ(h.wheel().size(), 1u);
  // Catching up after a stall: one advance fires every missed period.
  EXPECT_EQ(h.advance(kBase + 100000), 9900u);
  EXPECT_EQ(h.wheel().next_wake(), kBase + 100010);
}

TEST(TimerWheel, SelfRearmAtOrBeforeNowDoesNotSpin) {
  // A callback re-arming itself for its own (now past) expiry moves to the
  // next tick, so one advance fires it once per ms up to now, and once more
  // per extra call.
  Harness h(kBase);
  auto& p = h.probe(1, [](Harness::Probe& self) { self.h->wheel().arm(self.timer, self.timer.expiry()); });
  h.wheel().arm(p.timer, kBase + 5);
  EXPECT_EQ(h.advance(kBase + 9), 5u);  // ticks 5..9
  EXPECT_EQ(h.advance(kBase + 9), 1u);  // overdue since the last tick
  EXPECT_EQ(h.wheel().size(), 1u);
  h.wheel().cancel(p.timer);
  EXPECT_EQ(h.wheel().size(), 0u);
}

TEST(TimerWheel, CallbackCancelsAnotherDueInTheSameTick) {
  Harness h(kBase);
  Harness::Probe* a = nullptr;
  Harness::Probe* b = nullptr;
  a = &h.probe(1, [&](Harness::Probe&) { h.wheel().cancel(b->timer); });
  b = &h.probe(2, [&](Harness::Probe&) { h.wheel().cancel(a->timer); });
  auto& later = h.probe(3);
  auto& also = h.probe(4, [&](Harness::Probe&) { h.wheel().cancel(later.timer); });
  h.wheel().arm(a->timer, kBase + 7);
  h.wheel().arm(b->timer, kBase + 7);
  h.wheel().arm(also.timer, kBase + 8);
  h.wheel().arm(later.timer, kBase + 9000);
  EXPECT_EQ(h.wheel().size(), 4u);
  EXPECT_EQ(h.advance(kBase + 20000), 2u);
  ASSERT_EQ(h.log().size(), 2u);
  EXPECT_TRUE(h.log()[0].id == 1 || h.log()[0].id == 2);
  EXPECT_EQ(h.log()[1].id, 4);
  EXPECT_FALSE(a->timer.armed());
  EXPECT_FALSE(b->timer.armed());
  EXPECT_FALSE(later.timer.armed());
  EXPECT_EQ(h.wheel().size(), 0u);
  EXPECT_EQ(h.wheel().next_wake(), UINT64_MAX);
}

TEST(TimerWheel, CallbackArmsOthersThatFireInTheSameAdvanceWhenDue) {
  Harness h(kBase);
  auto& past = h.probe(2);
  auto& soon = h.probe(3);
  auto& beyond = h.probe(4);
  auto& trigger = h.probe(1, [&](Harness::Probe&) {
    h.wheel().arm(past.timer, kBase);           // in the past: next tick
    h.wheel().arm(soon.timer, kBase + 70);      // on the wheel, <= now
    h.wheel().arm(beyond.timer, kBase + 200);   // after now
  });
  h.wheel().arm(trigger.timer, kBase + 5);
  EXPECT_EQ(h.advance(kBase + 100), 3u);
  ASSERT_EQ(h.log().size(), 3u);
  EXPECT_EQ(h.log()[1].id, 2);
  EXPECT_EQ(h.log()[2].id, 3);
  EXPECT_TRUE(beyond.timer.armed());
  EXPECT_EQ(h.wheel().next_wake(), (kBase + 200) & ~uint64_t{63});  // level-1 cascade point
  EXPECT_EQ(h.advance(kBase + 200), 1u);
}

TEST(TimerWheel, NextWakeAndTimeout) {
  Harness h(kBase);
  auto& a = h.probe(1);
  auto& b = h.probe(2);
  auto& far = h.probe(3);
  EXPECT_EQ(h.wheel().timeout_ms(kBase), -1);
  h.wheel().arm(a.timer, kBase + 5);  // same 64-block as kBase: level 0
  EXPECT_EQ(h.wheel().next_wake(), kBase + 5);
  EXPECT_EQ(h.wheel().timeout_ms(kBase), 5);
  EXPECT_EQ(h.wheel().timeout_ms(kBase + 5), 0);
  EXPECT_EQ(h.wheel().timeout_ms(kBase + 50), 0);  // late: never negative
  h.wheel().cancel(a.timer);
  // kBase % 64 == 3, so kBase + 100 is in the next 64-block: level 1, and the
  // wake-up is the cascade point, which is not after the expiry.
  h.wheel().arm(b.timer, kBase + 100);
  const uint64_t wake = h.wheel().next_wake();
  EXPECT_EQ(wake, (kBase + 100) & ~uint64_t{63});
  EXPECT_GT(wake, kBase);
  EXPECT_EQ(h.advance(wake), 0u);
  EXPECT_EQ(h.wheel().next_wake(), kBase + 100);  // cascaded: exact now
  h.wheel().cancel(b.timer);
  h.wheel().arm(far.timer, kBase + (uint64_t{1} << 40) + 3);
  EXPECT_LE(h.wheel().next_wake(), kBase + (uint64_t{1} << 40) + 3);
  EXPECT_EQ(h.wheel().timeout_ms(h.now()), INT32_MAX);
  h.wheel().arm(far.timer, UINT64_MAX);
  EXPECT_EQ(h.wheel().timeout_ms(h.now()), INT32_MAX);
}

TEST(TimerWheel, BigJumpFiresEverythingDueAndNothingElse) {
  constexpr uint64_t kDay = 24ull * 3600 * 1000;
  Harness h(kBase);
  std::mt19937_64 rng(42);
  std::map<int, uint64_t> expiry;
  for (int i = 0; i < 5000; ++i) {
    auto& p = h.probe(i);
    const uint64_t e = kBase + rng() % (20 * kDay);
    h.wheel().arm(p.timer, e);
    expiry[i] = e;
  }
  auto& edge = h.probe(5000);
  h.wheel().arm(edge.timer, kBase + 10 * kDay);
  expiry[5000] = kBase + 10 * kDay;
  auto& after = h.probe(5001);
  h.wheel().arm(after.timer, kBase + 10 * kDay + 1);
  expiry[5001] = kBase + 10 * kDay + 1;

  const size_t due = static_cast<size_t>(
      std::count_if(expiry.begin(), expiry.end(), [](auto& kv) { return kv.second <= kBase + 10 * kDay; }));
  EXPECT_EQ(h.advance(kBase + 10 * kDay), due);
  ASSERT_EQ(h.log().size(), due);
  std::set<int> seen;
  for (size_t i = 0; i < h.log().size(); ++i) {
    EXPECT_LE(expiry[h.log()[i].id], kBase + 10 * kDay);
    if (i > 0) {
      EXPECT_LE(expiry[h.log()[i - 1].id], expiry[h.log()[i].id]) << "out of order";
    }
    seen.insert(h.log()[i].id);
  }
  EXPECT_EQ(seen.size(), due);
  EXPECT_EQ(h.wheel().size(), expiry.size() - due);
  EXPECT_TRUE(after.timer.armed());
  EXPECT_LE(h.wheel().next_wake(), kBase + 10 * kDay + 1);
  // The rest fires, each at its exact ms, when driven by next_wake().
  h.log().clear();
  h.run_until(kBase + 21 * kDay);
  EXPECT_EQ(h.log().size(), expiry.size() - due);
  for (const Fired& f : h.log()) EXPECT_EQ(f.at, expiry[f.id]);
  EXPECT_EQ(h.wheel().size(), 0u);
}

// The design cascaded a slot only when its first tick was processed. After
// advance(63) left cur_ = 64 with level 1 slot 1 (64..127) not yet cascaded, a
// timer armed for 70 went to level 0, next_wake() said 70, and the timer for
// 66 still on level 1 was skipped. Cascading on entering a tick fixes it.
TEST(TimerWheel, ArmAfterAdvanceEndingOnCascadePointDoesNotSkipIt) {
  Harness h(0);
  auto& a = h.probe(1);
  auto& b = h.probe(2);
  h.wheel().arm(a.timer, 66);
  EXPECT_EQ(h.advance(63), 0u);
  h.wheel().arm(b.timer, 70);
  EXPECT_EQ(h.wheel().next_wake(), 66u);
  EXPECT_EQ(h.advance(70), 2u);
  ASSERT_EQ(h.log().size(), 2u);
  EXPECT_EQ(h.log()[0].id, 1);
  EXPECT_EQ(h.log()[1].id, 2);
}

// Same hole from inside a callback: the last timer of a 64-block re-arms
// another while cur_ already sits on the next block's cascade point.
TEST(TimerWheel, CallbackArmOnCascadePointDoesNotSkipIt) {
  Harness h(0);
  auto& a = h.probe(1);
  auto& b = h.probe(2);
  auto& t = h.probe(3, [&](Harness::Probe&) { h.wheel().arm(b.timer, 70); });
  h.wheel().arm(a.timer, 66);
  h.wheel().arm(t.timer, 63);
  for (uint64_t now = 0; now <= 80; ++now) h.advance(now);
  ASSERT_EQ(h.log().size(), 3u);
  EXPECT_EQ(h.log()[1], (Fired{1, 66}));
  EXPECT_EQ(h.log()[2], (Fired{2, 70}));
}

TEST(TimerWheel, SizeBookkeeping) {
  Harness h(kBase);
  std::vector<Harness::Probe*> ps;
  for (int i = 0; i < 10; ++i) ps.push_back(&h.probe(i));
  for (int i = 0; i < 10; ++i) h.wheel().arm(ps[i]->timer, kBase + 10 * i);
  EXPECT_EQ(h.wheel().size(), 10u);
  h.wheel().arm(ps[3]->timer, kBase + 500);  // re-arm: no change
  EXPECT_EQ(h.wheel().size(), 10u);
  h.wheel().cancel(ps[4]->timer);
  h.wheel().cancel(ps[4]->timer);
  EXPECT_EQ(h.wheel().size(), 9u);
  EXPECT_EQ(h.advance(kBase + 45), 3u);  // 0, 10, 20 (30 moved, 40 cancelled)
  EXPECT_EQ(h.wheel().size(), 6u);
  h.wheel().arm(ps[0]->timer, kBase);  // past, again
  EXPECT_EQ(h.wheel().size(), 7u);
  h.wheel().cancel(ps[0]->timer);      // cancelled from the overdue list
  EXPECT_EQ(h.wheel().size(), 6u);
  EXPECT_EQ(h.advance(kBase + 1000), 6u);
  EXPECT_EQ(h.wheel().size(), 0u);
}

TEST(TimerWheel, DestructorUnlinksWithoutFiring) {
  Timer a, b, c;
  int calls = 0;
  auto count = [](void* ctx) { ++*static_cast<int*>(ctx); };
  a.fn = b.fn = c.fn = count;
  a.ctx = b.ctx = c.ctx = &calls;
  {
    TimerWheel w(kBase);
    w.arm(a, kBase + 1);
    w.arm(b, kBase + 100000);
    w.arm(c, 0);  // overdue
    w.advance(kBase);
  }
  EXPECT_EQ(calls, 1);  // only c, at the advance
  EXPECT_FALSE(a.armed());
  EXPECT_FALSE(b.armed());
  EXPECT_FALSE(c.armed());
  TimerWheel w2(0);  // a and b can be reused with another wheel
  w2.arm(a, 1);
  EXPECT_EQ(w2.advance(1), 1u);
  EXPECT_EQ(calls, 2);
}

TEST(TimerWheel, NearTheTopOfTheClock) {
  const uint64_t start = UINT64_MAX - 200;
  Harness h(start);
  auto& a = h.probe(1);
  auto& b = h.probe(2);
  auto& never = h.probe(3);
  h.wheel().arm(a.timer, UINT64_MAX - 100);
  h.wheel().arm(b.timer, UINT64_MAX - 1);
  h.wheel().arm(never.timer, UINT64_MAX);
  h.run_until(UINT64_MAX - 2);
  ASSERT_EQ(h.log().size(), 1u);
  EXPECT_EQ(h.log()[0], (Fired{1, UINT64_MAX - 100}));
  EXPECT_EQ(h.advance(UINT64_MAX), 1u);  // b; UINT64_MAX itself means never
  EXPECT_TRUE(never.timer.armed());
  EXPECT_EQ(h.wheel().size(), 1u);
  EXPECT_EQ(h.advance(UINT64_MAX), 0u);
  EXPECT_EQ(h.wheel().timeout_ms(UINT64_MAX - 1), 1);
}

TEST(TimerWheel, CrossesTheTopLevelCascade) {
  // Level 10 holds bits 60..63; its slots cascade at multiples of 2^60.
  constexpr uint64_t kTop = uint64_t{1} << 60;
  for (uint64_t start : {kTop - 10, uint64_t{5}}) {
    Harness h(start);
    auto& a = h.probe(1);
    auto& b = h.probe(2);
    h.wheel().arm(a.timer, kTop + 3);
    h.wheel().arm(b.timer, 3 * kTop + 7);
    EXPECT_LE(h.wheel().next_wake(), kTop + 3);
    h.run_until(4 * kTop);
    ASSERT_EQ(h.log().size(), 2u) << start;
    EXPECT_EQ(h.log()[0], (Fired{1, kTop + 3}));
    EXPECT_EQ(h.log()[1], (Fired{2, 3 * kTop + 7}));
  }
}

// Randomized comparison with a reference model. The model tracks, for each
// armed timer, its effective tick: max(expiry, cur) where cur is the wheel's
// next unprocessed tick when it was armed. Each firing must be of an armed
// timer that is due (effective tick <= now, or overdue at the start of this
// advance) with no armed timer due strictly earlier; after advance(now)
// nothing due may remain. Callbacks optionally arm and cancel timers too.
class Differential {
 public:
  Differential(uint64_t seed, bool mutate_in_callbacks)
      : rng_(seed), mutate_(mutate_in_callbacks), cur_(kStart), timers_(kTimers), wheel_(kStart) {
    for (int i = 0; i < kTimers; ++i) {
      timers_[i].self = this;
      timers_[i].id = i;
      timers_[i].timer.fn = &Differential::on_fire;
      timers_[i].timer.ctx = &timers_[i];
    }
  }

  void run(int ops) {
    for (int op = 0; op < ops && !::testing::Test::HasFailure(); ++op) {
      const uint64_t r = rng_() % 100;
      if (r < 45) {
        arm(static_cast<int>(rng_() % kTimers), random_expiry());
      } else if (r < 60) {
        cancel(static_cast<int>(rng_() % kTimers));
      } else {
        advance(random_now());
      }
      check_shape();
    }
    advance(now_ + (uint64_t{1} << 42));
    run_dry();
  }

  size_t fired() const { return total_fired_; }

 private:
  static constexpr int kTimers = 512;
  static constexpr uint64_t kStart = (uint64_t{1} << 36) + 12345;

  struct Entry {
    uint64_t expiry;
    uint64_t eff;
    uint64_t gen;
  };
  struct T {
    Differential* self;
    int id;
    Timer timer;
  };

  uint64_t random_expiry() {
    const uint64_t k = rng_() % 10;
    switch (k) {
      case 0: return now_ + rng_() % 4;
      case 1: return now_ + rng_() % 70;
      case 2: return now_ + rng_() % 5000;
      case 3: return now_ + rng_() % 300000;
      case 4: return now_ + rng_() % (uint64_t{1} << 30);
      case 5: return now_ + (uint64_t{1} << 40) + rng_() % 1000;
      case 6: return now_ - rng_() % 1000;  // in the past
      case 7: return now_;
      case 8: return cur_ + rng_() % 130;
      default: return now_ + rng_() % 400;
    }
  }

  uint64_t random_now() {
    const uint64_t k = rng_() % 20;
    if (k < 3) return now_;
    if (k < 9) return now_ + 1 + rng_() % 3;
    if (k < 13) return now_ + rng_() % 100;
    if (k < 16) return now_ + rng_() % 5000;
    if (k < 19) {  // sleep exactly until the wheel says
      const uint64_t w = wheel_.next_wake();
      return w == UINT64_MAX ? now_ + 1 : std::max(now_, w);
    }
    return now_ + rng_() % (uint64_t{1} << 33);  // a long stall
  }

  void arm(int id, uint64_t expiry) {
    erase(id);
    const Entry e{expiry, std::max(expiry, cur_), ++gen_};
    model_[id] = e;
    by_eff_.insert({e.eff, id});
    by_expiry_.insert({e.expiry, id});
    wheel_.arm(timers_[id].timer, expiry);
  }

  void cancel(int id) {
    erase(id);
    wheel_.cancel(timers_[id].timer);
  }

  void erase(int id) {
    auto it = model_.find(id);
    if (it == model_.end()) return;
    by_eff_.erase(by_eff_.find({it->second.eff, id}));
    by_expiry_.erase(by_expiry_.find({it->second.expiry, id}));
    model_.erase(it);
  }

  void advance(uint64_t now) {
    now_ = now;
    entry_overdue_.clear();
    for (auto& [id, e] : model_)
      if (e.expiry < cur_) entry_overdue_.insert({id, e.gen});
    in_entry_round_ = !entry_overdue_.empty();
    calls_ = 0;
    const size_t n = wheel_.advance(now);
    EXPECT_EQ(n, calls_);
    total_fired_ += n;
    for (auto& [id, gen] : entry_overdue_) {
      auto it = model_.find(id);
      EXPECT_FALSE(it != model_.end() && it->second.gen == gen) << "overdue timer " << id << " not fired";
    }
    if (!by_eff_.empty()) {
      EXPECT_GT(by_eff_.begin()->first, now) << "due timer not fired";
    }
    cur_ = std::max(cur_, now + 1);
  }

  static void on_fire(void* ctx) {
    auto& t = *static_cast<T*>(ctx);
    t.self->on_fired(t.id);
  }

  void on_fired(int id) {
    ++calls_;
    auto it = model_.find(id);
    ASSERT_NE(it, model_.end()) << "fired timer " << id << " that is not armed";
    const Entry e = it->second;
    const bool entry_round = entry_overdue_.count({id, e.gen}) > 0;
    if (!entry_round) {
      in_entry_round_ = false;
      EXPECT_LE(e.eff, now_) << "timer " << id << " fired early";
    }
    EXPECT_TRUE(!in_entry_round_ || entry_round) << "entry round interleaved";
    EXPECT_LE(by_eff_.begin()->first, e.eff);
    EXPECT_GE(by_eff_.begin()->first, e.eff) << "timer " << id << " fired before an earlier one";
    erase(id);
    // The wheel's cur_ while firing: unchanged in the entry round, else the
    // tick after the one being processed.
    if (!entry_round) cur_ = e.eff + 1;
    if (!mutate_) return;
    const uint64_t r = rng_() % 100;
    if (r < 30) {
      arm(id, rng_() % 4 == 0 ? now_ - rng_() % 10 : now_ + rng_() % 200);
    } else if (r < 45) {
      cancel(static_cast<int>(rng_() % kTimers));
    } else if (r < 60) {
      arm(static_cast<int>(rng_() % kTimers), random_expiry());
    }
  }

  void check_shape() {
    EXPECT_EQ(wheel_.size(), model_.size());
    const uint64_t wake = wheel_.next_wake();
    if (model_.empty()) {
      EXPECT_EQ(wake, UINT64_MAX);
      EXPECT_EQ(wheel_.timeout_ms(now_), -1);
      return;
    }
    EXPECT_LE(wake, by_expiry_.begin()->first) << "next_wake after the earliest expiry";
    if (by_expiry_.begin()->first >= cur_) {
      EXPECT_GE(wake, cur_);
      const int64_t to = wheel_.timeout_ms(now_);
      EXPECT_EQ(to, static_cast<int64_t>(std::min<uint64_t>(wake - std::min(wake, now_), INT32_MAX)));
    } else {
      EXPECT_EQ(wheel_.timeout_ms(now_), 0);
    }
    for (auto& [id, e] : model_) ASSERT_TRUE(timers_[id].timer.armed());
  }

  void run_dry() {
    EXPECT_EQ(wheel_.size(), model_.size());
    if (!mutate_) {
      EXPECT_TRUE(model_.empty());
      EXPECT_EQ(wheel_.next_wake(), UINT64_MAX);
    }
  }

  std::mt19937_64 rng_;
  bool mutate_;
  uint64_t now_ = kStart;
  uint64_t cur_;
  uint64_t gen_ = 0;
  size_t calls_ = 0;
  size_t total_fired_ = 0;
  bool in_entry_round_ = false;
  std::vector<T> timers_;  // must outlive the wheel
  TimerWheel wheel_;
  std::map<int, Entry> model_;
  std::multiset<std::pair<uint64_t, int>> by_eff_;
  std::multiset<std::pair<uint64_t, int>> by_expiry_;
  std::set<std::pair<int, uint64_t>> entry_overdue_;
};

TEST(TimerWheel, DifferentialAgainstReferenceModel) {
  Differential d(0x5eed'0001, false);
  d.run(100000);
  EXPECT_GT(d.fired(), 10000u);
}

TEST(TimerWheel, DifferentialWithCallbacksThatArmAndCancel) {
  Differential d(0x5eed'0002, true);
  d.run(100000);
  EXPECT_GT(d.fired(), 10000u);
}

}  // namespace
}  // namespace barrage
