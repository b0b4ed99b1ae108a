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

// Until a handshake says which protocol, connections open as HTTP/2 would
// need them at the 100 streams RFC 9113 asks a server to allow: one for up to
// 100 waiting requests, ten for 1,000 (before: one probe whatever the count,
// so a far HTTP/2 server's ramp took two connection set-ups in series).
TEST(OriginPool, UnknownProtocolOpensWhatHttp2WouldNeed) {
  OriginPool o;
  EXPECT_EQ(o.connections_wanted(0), 0u);
  EXPECT_EQ(o.connections_wanted(1), 1u);
  EXPECT_EQ(o.connections_wanted(100), 1u);
  EXPECT_EQ(o.connections_wanted(1000), 10u);
  o.open = o.opening = 1;
  EXPECT_EQ(o.connections_wanted(100), 0u);
  EXPECT_EQ(o.connections_wanted(500), 4u);
  // Once a handshake says HTTP/1.1, one per waiting request.
  o.protocol = OriginPool::Protocol::h1;
  EXPECT_EQ(o.connections_wanted(500), 499u);
}

// A failed connection that was opening: with none established and none
// other opening, every waiter was counting on it.
TEST(OriginPool, WaitersCountingOnAFailedConnectionFollowWhatOthersCarry) {
  OriginPool o;
  EXPECT_EQ(o.waiters_counting_on_failed(0), 0u);
  EXPECT_EQ(o.waiters_counting_on_failed(300), 300u);
  o.open = o.opening = 2;  // two others still opening carry 200 as HTTP/2 would
  EXPECT_EQ(o.waiters_counting_on_failed(300), 100u);
  o.protocol = OriginPool::Protocol::h1;
  EXPECT_EQ(o.waiters_counting_on_failed(300), 298u);
  o.open = 3;  // one established: only the oldest
  EXPECT_EQ(o.waiters_counting_on_failed(300), 1u);
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
