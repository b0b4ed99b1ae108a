// RedisLink on both backends against a real redis-server the test starts,
// kills and restarts; the URL parser; the creation probe; and servers that
// are not Redis (garbage, silence): a clear error or a bounded failure.
#include "net/redis_link.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <thread>

#include "redis_server.hpp"

namespace barrage {
namespace {

using namespace std::chrono_literals;
constexpr int64_t kMs = 1000000;

TEST(RedisUrl, Parses) {
  RedisEndpoint ep;
  EXPECT_EQ(parse_redis_url("redis://127.0.0.1:6380", &ep), "");
  EXPECT_EQ(ep.host, "127.0.0.1");
  EXPECT_EQ(ep.port, 6380);
  EXPECT_EQ(ep.db, 0);
  EXPECT_EQ(parse_redis_url("redis://alice:p%40ss@redis.internal:6379/3", &ep), "");
  EXPECT_EQ(ep.user, "alice");
  EXPECT_EQ(ep.password, "p@ss");
  EXPECT_EQ(ep.host, "redis.internal");
  EXPECT_EQ(ep.db, 3);
  EXPECT_EQ(parse_redis_url("redis://:secret@[::1]:7000", &ep), "");
  EXPECT_EQ(ep.host, "::1");
  EXPECT_EQ(ep.password, "secret");
  EXPECT_EQ(ep.user, "");
}

TEST(RedisUrl, RefusesMalformed) {
  RedisEndpoint ep;
  EXPECT_NE(parse_redis_url("http://127.0.0.1:6379", &ep), "");
  EXPECT_NE(parse_redis_url("redis://", &ep), "");
  EXPECT_NE(parse_redis_url("redis://host:0", &ep), "");
  EXPECT_NE(parse_redis_url("redis://host:99999", &ep), "");
  EXPECT_NE(parse_redis_url("redis://host:12x", &ep), "");
  EXPECT_NE(parse_redis_url("redis://host:6379/db", &ep), "");
  EXPECT_NE(parse_redis_url("redis://a:b%4@host:1", &ep), "");
  EXPECT_NE(parse_redis_url("redis://[::1:6379", &ep), "");
  std::string tls = parse_redis_url("rediss://host:6379", &ep);
  EXPECT_NE(tls.find("TLS"), std::string::npos) << tls;
}

TEST(RedisProbe, NotRedisIsAClearError) {
  testing::NotRedis garbage(true);
  RedisEndpoint ep;
  ASSERT_EQ(parse_redis_url("redis://127.0.0.1:" + std::to_string(garbage.port()), &ep), "");
  RedisProbe p = probe_redis(&ep, 1000, "return 1");
  EXPECT_NE(p.error.find("not Redis"), std::string::npos) << p.error;
}

TEST(RedisProbe, SilenceIsUnreachableWithinTheTimeout) {
  testing::NotRedis silent(false);
  RedisEndpoint ep;
  ASSERT_EQ(parse_redis_url("redis://127.0.0.1:" + std::to_string(silent.port()), &ep), "");
  auto t0 = std::chrono::steady_clock::now();
  RedisProbe p = probe_redis(&ep, 300, "return 1");
  EXPECT_FALSE(p.reachable);
  EXPECT_EQ(p.error, "");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
}

TEST(RedisProbe, WrongPasswordIsAClearError) {
  testing::RedisServer server("--requirepass right");
  if (server.missing()) GTEST_SKIP() << "redis-server is not installed";
  RedisEndpoint ep;
  ASSERT_EQ(parse_redis_url("redis://:wrong@127.0.0.1:" + std::to_string(server.port()), &ep), "");
  RedisProbe p = probe_redis(&ep, 1000, "return 1");
  EXPECT_NE(p.error.find("credentials"), std::string::npos) << p.error;
  EXPECT_EQ(p.error.find("wrong"), std::string::npos) << "the password must not appear";
  ASSERT_EQ(parse_redis_url("redis://:right@127.0.0.1:" + std::to_string(server.port()) + "/2", &ep), "");
  p = probe_redis(&ep, 1000, "return 1");
  EXPECT_EQ(p.error, "");
  EXPECT_TRUE(p.reachable);
  EXPECT_EQ(p.script_sha.size(), 40u);
}

TEST(RedisProbe, RefusedIsUnreachable) {
  RedisEndpoint ep;
  ASSERT_EQ(parse_redis_url("redis://127.0.0.1:" + std::to_string(testing::free_loopback_port()), &ep), "");
  RedisProbe p = probe_redis(&ep, 1000, "return 1");
  EXPECT_FALSE(p.reachable);
  EXPECT_EQ(p.error, "");
}

std::string kind_name(const ::testing::TestParamInfo<BackendKind>& info) { return backend_name(info.param); }

class RedisLinkTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    BackendChoice c = make_backend(GetParam());
    if (!c.backend) {
      if (GetParam() == BackendKind::io_uring) GTEST_SKIP() << c.why;
      FAIL() << c.why;
    }
    backend_ = std::move(c.backend);
    wheel_ = std::make_unique<TimerWheel>(monotonic_ms());
  }
  void TearDown() override { link_.reset(); }

  RedisLink& make(uint16_t port, int64_t timeout_ms = 500, const std::string& auth = "") {
    RedisEndpoint ep;
    EXPECT_EQ(parse_redis_url("redis://" + auth + "127.0.0.1:" + std::to_string(port), &ep), "");
    link_ = std::make_unique<RedisLink>(*backend_, *wheel_, clock_, ep, timeout_ms);
    return *link_;
  }
  void turn() {
    wheel_->advance(monotonic_ms());
    int64_t t = wheel_->timeout_ms(monotonic_ms());
    if (t < 0 || t > 10) t = 10;
    if (backend_->has_pending()) t = 0;
    ASSERT_GE(backend_->wait(t * kMs), 0);
    wheel_->advance(monotonic_ms());
  }
  // Sends argv and runs the loop until its callback (bounded: 5 s).
  RedisReply call(std::vector<std::string> argv) {
    RedisReply out;
    bool done = false;
    link_->command(argv, [&](const RedisReply& r) {
      out = r;
      done = true;
    });
    EXPECT_FALSE(done) << "the callback ran inside command()";
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!done && std::chrono::steady_clock::now() < deadline) turn();
    EXPECT_TRUE(done) << "no answer and no failure within 5 s";
    return out;
  }

  std::unique_ptr<Backend> backend_;
  std::unique_ptr<TimerWheel> wheel_;
  Clock clock_;
  std::unique_ptr<RedisLink> link_;
};

TEST_P(RedisLinkTest, CommandsAndScripts) {
  testing::RedisServer server;
  if (server.missing()) GTEST_SKIP() << "redis-server is not installed";
  make(server.port());
  RedisReply r = call({"PING"});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.text, "PONG");
  EXPECT_TRUE(link_->connected());
  // A script Redis does not know (as after a restart): EVAL loads it.
  bool done = false;
  RedisReply e;
  link_->eval("return {1, 2, 3}", "0123456789012345678901234567890123456789", {"0"}, [&](const RedisReply& x) {
    e = x;
    done = true;
  });
  for (int i = 0; i < 500 && !done; ++i) turn();
  ASSERT_TRUE(e.ok) << e.error;
  EXPECT_EQ(e.ints, (std::vector<int64_t>{1, 2, 3}));
  r = call({"SCRIPT", "EXISTS", "0123456789012345678901234567890123456789"});
  EXPECT_EQ(link_->round_trips(), 4u);  // PING, EVALSHA (NOSCRIPT), EVAL, SCRIPT EXISTS
}

TEST_P(RedisLinkTest, KilledServerFailsCommandsThenRestartRejoins) {
  testing::RedisServer server;
  if (server.missing()) GTEST_SKIP() << "redis-server is not installed";
  make(server.port(), 300);
  ASSERT_TRUE(call({"PING"}).ok);
  server.kill();
  auto t0 = std::chrono::steady_clock::now();
  RedisReply r = call({"PING"});
  EXPECT_FALSE(r.ok);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  r = call({"PING"});  // refused: still down
  EXPECT_FALSE(r.ok);
  ASSERT_TRUE(server.start());
  // Within a few reconnect pauses the link works again.
  bool back = false;
  for (int i = 0; i < 50 && !back; ++i) {
    back = call({"PING"}).ok;
    if (!back) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(back);
}

TEST_P(RedisLinkTest, GarbageFailsPromptly) {
  testing::NotRedis garbage(true);
  make(garbage.port(), 1000);
  auto t0 = std::chrono::steady_clock::now();
  RedisReply r = call({"PING"});
  EXPECT_FALSE(r.ok);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

TEST_P(RedisLinkTest, SilenceFailsAtTheTimeout) {
  testing::NotRedis silent(false);
  make(silent.port(), 200);
  auto t0 = std::chrono::steady_clock::now();
  RedisReply r = call({"PING"});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("did not answer"), std::string::npos) << r.error;
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(took, 190ms);
  EXPECT_LT(took, 2s);
}

TEST_P(RedisLinkTest, WrongPasswordFailsCommands) {
  testing::RedisServer server("--requirepass right");
  if (server.missing()) GTEST_SKIP() << "redis-server is not installed";
  make(server.port(), 500, ":wrong@");
  EXPECT_FALSE(call({"PING"}).ok);
  make(server.port(), 500, ":right@");
  RedisReply r = call({"PING"});
  EXPECT_TRUE(r.ok) << r.error;
}

INSTANTIATE_TEST_SUITE_P(Backends, RedisLinkTest, ::testing::Values(BackendKind::io_uring, BackendKind::epoll),
                         kind_name);

}  // namespace
}  // namespace barrage
