// The delay line's rules with time passed in: delay, jitter and reordering,
// seeded loss, the rate cap's serialisation and tail drop, link down; and
// its control commands.
#include <gtest/gtest.h>

#include "control.hpp"
#include "link_model.hpp"

namespace barrage::netlab {
namespace {

constexpr uint64_t kMs = 1'000'000;

TEST(LinkModel, DelaysEveryPacketByTheSetting) {
  LinkModel m(1);
  m.set({.delay_ns = 40 * kMs});
  EXPECT_EQ(m.admit(0, 100), 40 * kMs);
  EXPECT_EQ(m.admit(7 * kMs, 1500), 47 * kMs);
  EXPECT_TRUE(m.depart(40 * kMs + 3000, 40 * kMs, 100));
  EXPECT_EQ(m.counters().passed, 1u);
  EXPECT_EQ(m.counters().bytes, 100u);
  EXPECT_EQ(m.counters().reordered, 0u);
  EXPECT_EQ(m.counters().late_max_ns, 3000u);
}

TEST(LinkModel, JitterStaysInItsBandAndReorders) {
  LinkModel m(7);
  m.set({.delay_ns = 10 * kMs, .jitter_ns = 5 * kMs});
  uint64_t lo = UINT64_MAX, hi = 0;
  for (uint64_t i = 0; i < 1000; ++i) {
    const auto d = m.admit(i * 100'000, 100);  // a packet every 0.1 ms
    ASSERT_TRUE(d);
    const uint64_t delay = *d - i * 100'000;
    lo = std::min(lo, delay);
    hi = std::max(hi, delay);
  }
  EXPECT_GE(lo, 5 * kMs);
  EXPECT_LE(hi, 15 * kMs);
  EXPECT_LT(lo, 6 * kMs);  // the band is used, not just its middle
  EXPECT_GT(hi, 14 * kMs);
  EXPECT_GT(m.counters().reordered, 100u);
}

TEST(LinkModel, LossIsSeededAndCloseToTheSetting) {
  auto lost = [](uint64_t seed) {
    LinkModel m(seed);
    m.set({.loss = 0.25});
    for (int i = 0; i < 10000; ++i) m.admit(uint64_t(i), 100);
    return m.counters().lost;
  };
  EXPECT_EQ(lost(3), lost(3));
  EXPECT_NE(lost(3), lost(4));
  EXPECT_NEAR(double(lost(3)), 2500.0, 150.0);  // 3.5 standard deviations
}

TEST(LinkModel, RateCapSerialisesAndTailDrops) {
  LinkModel m(1);
  // 8,000 bit/s: a 1,000-byte packet takes 1 s on the wire.
  m.set({.delay_ns = 10 * kMs, .rate_bps = 8000, .queue_bytes = 2500});
  EXPECT_EQ(m.admit(0, 1000), 1000 * kMs + 10 * kMs);
  EXPECT_EQ(m.admit(0, 1000), 2000 * kMs + 10 * kMs);  // behind the first
  EXPECT_FALSE(m.admit(0, 1000));                      // 2,000 waiting + 1,000 > 2,500
  EXPECT_EQ(m.counters().queue, 1u);
  // Half a second later 1,500 bytes wait: room for 1,000 more.
  EXPECT_EQ(m.admit(500 * kMs, 1000), 3000 * kMs + 10 * kMs);
  // An idle wire starts at once.
  EXPECT_EQ(m.admit(5000 * kMs, 500), 5500 * kMs + 10 * kMs);
}

TEST(LinkModel, DownDropsArrivalsAndDeparturesUntilItEnds) {
  LinkModel m(1);
  m.set({.delay_ns = 10 * kMs});
  const auto before = m.admit(0, 100);  // leaves at 10 ms
  m.set_down_until(100 * kMs);
  EXPECT_FALSE(m.admit(50 * kMs, 100));
  EXPECT_FALSE(m.depart(*before, *before, 100));  // in flight when the link went down
  EXPECT_EQ(m.counters().down, 2u);
  EXPECT_EQ(m.admit(100 * kMs, 100), 110 * kMs);
  EXPECT_TRUE(m.depart(110 * kMs, 110 * kMs, 100));
  EXPECT_EQ(m.counters().passed, 1u);
}

TEST(Control, SettingsApplyToOneOrBothDirections) {
  LinkModel to(1), from(2);
  EXPECT_EQ(apply_command("delay 40", to, from, 0, 0).text, "ok");
  EXPECT_EQ(to.settings().delay_ns, 40 * kMs);
  EXPECT_EQ(from.settings().delay_ns, 40 * kMs);
  EXPECT_EQ(apply_command("delay 2.5 from", to, from, 0, 0).text, "ok");
  EXPECT_EQ(to.settings().delay_ns, 40 * kMs);
  EXPECT_EQ(from.settings().delay_ns, 2'500'000u);
  EXPECT_EQ(apply_command("loss 0.01 to", to, from, 0, 0).text, "ok");
  EXPECT_DOUBLE_EQ(to.settings().loss, 0.01);
  EXPECT_DOUBLE_EQ(from.settings().loss, 0);
  EXPECT_EQ(apply_command("rate 1000000", to, from, 0, 0).text, "ok");
  EXPECT_EQ(from.settings().rate_bps, 1'000'000u);
  EXPECT_EQ(apply_command("jitter 3", to, from, 0, 0).text, "ok");
  EXPECT_EQ(apply_command("queue 65536", to, from, 0, 0).text, "ok");
  EXPECT_EQ(to.settings().queue_bytes, 65536u);
}

TEST(Control, DownUpStatsQuitAndErrors) {
  LinkModel to(1), from(2);
  EXPECT_EQ(apply_command("down 3000", to, from, 5 * kMs, 0).text, "ok");
  EXPECT_TRUE(to.down_at(3004 * kMs));
  EXPECT_FALSE(from.down_at(3005 * kMs));
  EXPECT_EQ(apply_command("up", to, from, 6 * kMs, 0).text, "ok");
  EXPECT_FALSE(to.down_at(7 * kMs));
  to.admit(0, 100);
  EXPECT_EQ(apply_command("stats", to, from, 0, 42).text,
            "stats to.passed=0 to.bytes=0 to.lost=0 to.down=0 to.queue=0 to.reordered=0 to.late_max_us=0 "
            "to.late_mean_us=0 from.passed=0 from.bytes=0 from.lost=0 from.down=0 from.queue=0 "
            "from.reordered=0 from.late_max_us=0 from.late_mean_us=0 cpu_us=42");
  EXPECT_TRUE(apply_command("quit", to, from, 0, 0).quit);
  for (const char* bad : {"", "loss 1.5", "delay -1", "delay x", "rate 10 sideways", "teleport 3", "queue 10",
                          "down", "stats now"})
    EXPECT_EQ(apply_command(bad, to, from, 0, 0).text.rfind("error: ", 0), 0u) << bad;
}

}  // namespace
}  // namespace barrage::netlab
