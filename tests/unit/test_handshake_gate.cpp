// HandshakeGate: the cap, FIFO hand-over of freed slots, leaving from the
// queue, and leave() being safe to call twice.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "pool/handshake_gate.hpp"
#include "pool/transport.hpp"

namespace barrage {
namespace {

// Transports that never open: only their gate bookkeeping is used.
struct NoEvents final : TransportEvents {
  void on_established() noexcept override {}
  bool on_plaintext(const char*, size_t) noexcept override { return true; }
  void on_peer_closed() noexcept override {}
  void on_transport_failed(int, std::string) noexcept override {}
};

TEST(HandshakeGate, AdmitsUpToTheCapThenQueuesInOrder) {
  NoEvents ev;
  TransportEnv env;  // no gate in env: destruction must not call back into it here
  Transport a(env, &ev), b(env, &ev), c(env, &ev), d(env, &ev);
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
  NoEvents ev;
  TransportEnv env;
  Transport a(env, &ev), b(env, &ev);
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
  NoEvents ev;
  TransportEnv env;
  Transport a(env, &ev), b(env, &ev);
  HandshakeGate g(0);
  EXPECT_TRUE(g.enter(&a));
  EXPECT_FALSE(g.enter(&b));
  g.leave(&a);
  EXPECT_TRUE(b.gate_slot);
  g.leave(&b);
  EXPECT_EQ(g.running(), 0u);
}

TEST(HandshakeGate, OneOriginCannotTakeEverySlot) {
  NoEvents ev;
  TransportEnv env;
  int origin_a = 0, origin_b = 0;  // only their addresses matter
  std::vector<std::unique_ptr<Transport>> a, b;
  HandshakeGate g(8);
  ASSERT_EQ(g.owner_cap(), 7u);
  for (int i = 0; i < 10; ++i) {
    a.push_back(std::make_unique<Transport>(env, &ev));
    a.back()->gate_owner = &origin_a;
  }
  for (int i = 0; i < 3; ++i) {
    b.push_back(std::make_unique<Transport>(env, &ev));
    b.back()->gate_owner = &origin_b;
  }
  // A stalled origin fills its share; the eighth slot stays free for others.
  for (int i = 0; i < 10; ++i) EXPECT_EQ(g.enter(a[size_t(i)].get()), i < 7) << i;
  EXPECT_EQ(g.running(), 7u);
  EXPECT_EQ(g.waiting(), 3u);
  EXPECT_TRUE(g.enter(b[0].get())) << "another origin starts at once";
  EXPECT_FALSE(g.enter(b[1].get()));
  EXPECT_FALSE(g.enter(b[2].get()));
  // Freed slots go to the origins that wait, in the order they queued, each
  // origin's transports in FIFO order.
  g.leave(b[0].get());
  EXPECT_TRUE(b[1]->gate_slot);
  g.leave(a[0].get());  // b queued before a could start again
  EXPECT_TRUE(b[2]->gate_slot);
  EXPECT_FALSE(a[7]->gate_slot);
  g.leave(a[1].get());
  EXPECT_TRUE(a[7]->gate_slot);
  EXPECT_FALSE(a[8]->gate_slot);
  EXPECT_EQ(g.running(), 8u);
  for (auto& t : a) g.leave(t.get());
  for (auto& t : b) g.leave(t.get());
  EXPECT_EQ(g.running(), 0u);
  EXPECT_EQ(g.waiting(), 0u);
}

}  // namespace
}  // namespace barrage
