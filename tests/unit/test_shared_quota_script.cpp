// shared_quota.lua against a real redis-server (started by the test on its
// own port and directory): leases, waits, returns, clamps, cooldown, live set.
#include <gtest/gtest.h>
#include <sys/time.h>
#include <hiredis/hiredis.h>

#include <string>
#include <vector>

#include "flow/shared_quota_lua.h"
#include "redis_server.hpp"

namespace barrage {
namespace {

struct Bucket {
  double interval_us = 0;
  int64_t burst = 0, adjust = 0, min = 0, max = 0, clamp = -1;
};

class Script : public ::testing::Test {
 protected:
  void SetUp() override {
    if (server_.missing()) GTEST_SKIP() << "redis-server is not installed";
    ASSERT_TRUE(server_.running());
    timeval tv{5, 0};
    c_ = redisConnectWithTimeout("127.0.0.1", server_.port(), tv);
    ASSERT_TRUE(c_ && !c_->err);
  }
  void TearDown() override {
    if (c_) redisFree(c_);
  }
  // {granted r, base r, granted t, base t, wait_us, cooldown ms, live, now_us}
  std::vector<long long> run(const std::string& pid, Bucket r, Bucket t = {}, int64_t cool_ms = 0,
                             int64_t horizon_us = 1000000) {
    std::vector<std::string> a = {"EVAL", kSharedQuotaLua, "4", "k:r", "k:t", "k:cool", "live", pid,
                                  std::to_string(horizon_us), "3000", std::to_string(cool_ms)};
    for (const Bucket& b : {r, t}) {
      for (auto v : {std::to_string(b.interval_us), std::to_string(b.burst), std::to_string(b.adjust),
                     std::to_string(b.min), std::to_string(b.max), std::to_string(b.clamp)})
        a.push_back(v);
    }
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (auto& s : a) {
      argv.push_back(s.data());
      lens.push_back(s.size());
    }
    auto* rep = static_cast<redisReply*>(redisCommandArgv(c_, int(argv.size()), argv.data(), lens.data()));
    std::vector<long long> out;
    EXPECT_TRUE(rep);
    if (!rep) return out;
    EXPECT_EQ(rep->type, REDIS_REPLY_ARRAY) << (rep->str ? rep->str : "");
    if (rep->type == REDIS_REPLY_ARRAY)
      for (size_t i = 0; i < rep->elements; ++i) out.push_back(rep->element[i]->integer);
    freeReplyObject(rep);
    return out;
  }

  testing::RedisServer server_;
  redisContext* c_ = nullptr;
};

Bucket per_s_200(int64_t min, int64_t max) { return Bucket{5000, 20, 0, min, max, -1}; }

TEST_F(Script, LeasesReserveTheHorizonThenWait) {
  auto a = run("p1", per_s_200(1, 50));
  ASSERT_EQ(a.size(), 8u);
  EXPECT_EQ(a[0], 50);
  // Redis's own clock (wall clock µs), which the bases count from.
  timeval tv;
  gettimeofday(&tv, nullptr);
  EXPECT_NEAR(double(a[7]), double(tv.tv_sec) * 1e6 + double(tv.tv_usec), 5e6);
  EXPECT_EQ(a[1], -100000);  // a full bucket: units 1..20 are due at once
  EXPECT_EQ(a[4], 0);
  EXPECT_EQ(a[6], 1);
  // Two live processes: one lease holds at most half the horizon's 200 units.
  auto b = run("p2", per_s_200(1, 500));
  EXPECT_EQ(b[0], 100);
  EXPECT_EQ(b[6], 2);  // two live processes
  EXPECT_NEAR(double(b[1]), 150000, 20000);  // after p1's 50 units
  // The rest of the horizon: 220 units fit (burst + 1 s), 150 are gone.
  auto b2 = run("p2", per_s_200(1, 500));
  EXPECT_NEAR(double(b2[0]), 70, 2);
  // Nothing left within the horizon: wait about one unit.
  auto c = run("p1", per_s_200(1, 10));
  EXPECT_EQ(c[0], 0);
  EXPECT_GT(c[4], 0);
  EXPECT_LE(c[4], 15000);
}

TEST_F(Script, ReturnedUnitsAreLeasedAgain) {
  run("p1", per_s_200(1, 220));
  Bucket back = per_s_200(0, 0);
  back.adjust = -100;
  run("p1", back);
  auto a = run("p2", per_s_200(1, 500));
  EXPECT_NEAR(double(a[0]), 100, 2);
}

TEST_F(Script, ClampToRemainingWaits) {
  Bucket c = per_s_200(1, 5);
  c.clamp = 0;  // the server says none is left
  auto a = run("p1", c);
  EXPECT_EQ(a[0], 5);  // still within the horizon: reserved after the clamp
  EXPECT_NEAR(double(a[1]), 0, 1000);  // but none is due before a unit's interval
}

TEST_F(Script, CooldownHoldsEveryone) {
  auto a = run("p1", per_s_200(1, 5), {}, 2000);
  EXPECT_EQ(a[0], 0);
  EXPECT_GT(a[5], 1900);
  auto b = run("p2", per_s_200(1, 5));
  EXPECT_EQ(b[0], 0);
  EXPECT_GT(b[5], 1900);
  EXPECT_LE(b[5], 2000);
}

TEST_F(Script, TokensLargerThanTheBurstWaitForAFullBucket) {
  Bucket t{1000, 100, 0, 150, 150, -1};  // 1000 tokens/s, burst 100
  auto a = run("p1", {}, t);
  EXPECT_EQ(a[2], 150);
  EXPECT_EQ(a[3] + 150 * 1000, 0);  // all 150 due now; the bucket goes into debt
  auto b = run("p1", {}, Bucket{1000, 100, 0, 1, 1, -1});
  EXPECT_EQ(b[2], 1);
  // 50 tokens of debt are paid first: the next one is due after 51 ms.
  EXPECT_NEAR(double(b[3]) + 1000, 51000, 2000);
}

}  // namespace
}  // namespace barrage
