// OriginPool: LIFO reuse of idle connections (warmest first), the open cap,
// and forgetting a connection that closed while idle.
#include <gtest/gtest.h>

#include "pool/origin_pool.hpp"

namespace barrage {
namespace {

TEST(OriginPool, IdleConnectionsAreReusedLastInFirstOut) {
  OriginPool o;
  ConnectionEnv env;
  Connection a(env, &o), b(env, &o), c(env, &o);
  o.put_idle(&a);
  o.put_idle(&b);
  o.put_idle(&c);
  EXPECT_EQ(o.idle.size(), 3u);
  EXPECT_EQ(o.take_idle(), &c);
  EXPECT_EQ(o.take_idle(), &b);
  EXPECT_EQ(o.take_idle(), &a);
  EXPECT_EQ(o.take_idle(), nullptr);
}

TEST(OriginPool, ForgettingAnIdleConnectionRemovesOnlyIt) {
  OriginPool o;
  ConnectionEnv env;
  Connection a(env, &o), b(env, &o);
  o.put_idle(&a);
  o.put_idle(&b);
  o.forget_idle(&a);
  o.forget_idle(&a);  // not linked any more: a no-op
  EXPECT_FALSE(a.hook.linked());
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

}  // namespace
}  // namespace barrage
