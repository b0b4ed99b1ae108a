// OriginPool: LIFO reuse of idle connections (warmest first), the open cap,
// forgetting a connection that closed while idle, and the open policy per
// protocol (how many connections the waiting requests want).
#include <gtest/gtest.h>

#include "loop/clock.hpp"
#include "net/dns_resolver.hpp"
#include "net/proxy_config.hpp"
#include "pool/connection_pool.hpp"
#include "pool/origin_pool.hpp"

namespace barrage {
namespace {

// Connections need a pool to belong to; none of them is ever opened here.
struct PoolFixture : ::testing::Test {
  void SetUp() override {
    backend = make_backend(BackendKind::epoll).backend;
    ASSERT_TRUE(backend);
    wheel = std::make_unique<TimerWheel>(0);
    std::string err;
    dns = DnsResolver::create(*backend, *wheel, DnsOptions{}, &err);
    ASSERT_TRUE(dns) << err;
    pool = std::make_unique<ConnectionPool>(PoolSettings{}, TransportEnv{}, *wheel, *dns, proxy, clock);
  }
  std::unique_ptr<Backend> backend;
  std::unique_ptr<TimerWheel> wheel;
  std::unique_ptr<DnsResolver> dns;
  ProxyConfig proxy;
  Clock clock;
  std::unique_ptr<ConnectionPool> pool;
  OriginPool o;
};

TEST_F(PoolFixture, IdleConnectionsAreReusedLastInFirstOut) {
  Connection a(*pool, o, {}), b(*pool, o, {}), c(*pool, o, {});
  o.put_idle(&a);
  o.put_idle(&b);
  o.put_idle(&c);
  EXPECT_EQ(o.idle.size(), 3u);
  EXPECT_EQ(o.take_idle(), &c);
  EXPECT_EQ(o.take_idle(), &b);
  EXPECT_EQ(o.take_idle(), &a);
  EXPECT_EQ(o.take_idle(), nullptr);
}

TEST_F(PoolFixture, ForgettingAnIdleConnectionRemovesOnlyIt) {
  Connection a(*pool, o, {}), b(*pool, o, {});
  o.put_idle(&a);
  o.put_idle(&b);
  o.forget_idle(&a);
  o.forget_idle(&a);  // not linked any more: a no-op
  EXPECT_FALSE(o.is_idle(&a));
  EXPECT_EQ(o.take_idle(), &b);
  EXPECT_EQ(o.take_idle(), nullptr);
}

TEST(OriginPool, OpenCapCountsConnectionsNotIdleOnes) {
  OriginPool o;
  o.max_open = 2;
  EXPECT_TRUE(o.can_open());
  o.open = 1;
  EXPECT_TRUE(o.can_open());
  o.open = 2;
  EXPECT_FALSE(o.can_open());
}

TEST(OriginPool, Http1OpensOneConnectionPerWaitingRequestNotAlreadyCovered) {
  OriginPool o;
  o.protocol = OriginPool::Protocol::h1;
  EXPECT_EQ(o.connections_wanted(0), 0u);
  EXPECT_EQ(o.connections_wanted(5), 5u);
  o.open = o.opening = 3;
  EXPECT_EQ(o.connections_wanted(5), 2u);
  EXPECT_EQ(o.connections_wanted(2), 0u);
  o.max_open = 4;  // the cap wins
  EXPECT_EQ(o.connections_wanted(5), 1u);
}

TEST(OriginPool, UnknownProtocolOpensOneProbeConnection) {
  OriginPool o;  // protocol unknown until a first handshake says
  EXPECT_EQ(o.connections_wanted(0), 0u);
  EXPECT_EQ(o.connections_wanted(500), 1u);
  o.open = o.opening = 1;
  EXPECT_EQ(o.connections_wanted(500), 0u);
}

TEST(OriginPool, Http2OpensOnlyWhatConnectionsOpeningCannotCarry) {
  OriginPool o;
  o.protocol = OriginPool::Protocol::h2;
  o.streams_per_conn = 100;
  EXPECT_EQ(o.connections_wanted(1), 1u);
  EXPECT_EQ(o.connections_wanted(250), 3u);
  o.open = o.opening = 2;
  EXPECT_EQ(o.connections_wanted(200), 0u);
  EXPECT_EQ(o.connections_wanted(201), 1u);
}

}  // namespace
}  // namespace barrage
