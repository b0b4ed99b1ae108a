// HandshakeGate: the cap, FIFO hand-over of freed slots, leaving from the
// queue, and leave() being safe to call twice.
#include <gtest/gtest.h>

#include "pool/handshake_gate.hpp"
#include "pool/origin_pool.hpp"

namespace barrage {
namespace {

TEST(HandshakeGate, AdmitsUpToTheCapThenQueuesInOrder) {
  OriginPool o;
  ConnectionEnv env;  // no gate in env: close() must not call back into it here
  Connection a(env, &o), b(env, &o), c(env, &o), d(env, &o);
  HandshakeGate g(2);
  EXPECT_TRUE(g.enter(&a));
  EXPECT_TRUE(g.enter(&b));
  EXPECT_FALSE(g.enter(&c));
  EXPECT_FALSE(g.enter(&d));
  EXPECT_EQ(g.running(), 2u);
  EXPECT_EQ(g.waiting(), 2u);
  EXPECT_TRUE(a.gate_slot);
  EXPECT_FALSE(c.gate_slot);

  g.leave(&a);  // a's slot goes to the oldest waiter, c
  EXPECT_FALSE(a.gate_slot);
  EXPECT_TRUE(c.gate_slot);
  EXPECT_FALSE(c.gate_hook.linked());
  EXPECT_EQ(g.running(), 2u);
  EXPECT_EQ(g.waiting(), 1u);

  g.leave(&a);  // twice: a no-op
  EXPECT_EQ(g.running(), 2u);

  g.leave(&d);  // d gave up while queued (closed, timed out)
  EXPECT_FALSE(d.gate_hook.linked());
  EXPECT_FALSE(d.gate_slot);
  EXPECT_EQ(g.waiting(), 0u);
  EXPECT_EQ(g.running(), 2u);

  g.leave(&b);
  g.leave(&c);
  EXPECT_EQ(g.running(), 0u);
  EXPECT_TRUE(g.enter(&d));  // the slots are really free again
}

TEST(HandshakeGate, AfterStopAFreedSlotStartsNobody) {
  OriginPool o;
  ConnectionEnv env;
  Connection a(env, &o), b(env, &o);
  HandshakeGate g(1);
  EXPECT_TRUE(g.enter(&a));
  EXPECT_FALSE(g.enter(&b));
  g.stop();
  g.leave(&a);
  EXPECT_FALSE(b.gate_slot);
  EXPECT_TRUE(b.gate_hook.linked());
  g.leave(&b);  // the owner closes the queued one too
  EXPECT_EQ(g.waiting(), 0u);
  EXPECT_EQ(g.running(), 0u);
}

TEST(HandshakeGate, ACapOfZeroStillAdmitsOne) {
  OriginPool o;
  ConnectionEnv env;
  Connection a(env, &o), b(env, &o);
  HandshakeGate g(0);
  EXPECT_TRUE(g.enter(&a));
  EXPECT_FALSE(g.enter(&b));
  g.leave(&a);
  EXPECT_TRUE(b.gate_slot);
  g.leave(&b);
  EXPECT_EQ(g.running(), 0u);
}

}  // namespace
}  // namespace barrage
