// HandshakeGate: the cap, FIFO hand-over of freed slots, leaving from the
// queue, leave() being safe to call twice, fairness between origins, and
// the ticket probe with its resumed slots.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "net/tls_context.hpp"
#include "pool/handshake_gate.hpp"
#include "pool/transport.hpp"

namespace barrage {
namespace {

// The pool's flush() with time to spare: whoever may start now starts.
const TimeBudget kNoLimit = TimeBudget::unlimited();

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
  g.start_waiting(kNoLimit);
  EXPECT_FALSE(a.gate_slot);
  EXPECT_TRUE(c.gate_slot);
  EXPECT_FALSE(c.gate_hook.linked());
  EXPECT_EQ(g.running(), 2u);
  EXPECT_EQ(g.waiting(), 1u);

  g.leave(&a);  // twice: a no-op
  g.start_waiting(kNoLimit);
  EXPECT_EQ(g.running(), 2u);

  g.leave(&d);  // d gave up while queued (closed, timed out)
  g.start_waiting(kNoLimit);
  EXPECT_FALSE(d.gate_hook.linked());
  EXPECT_FALSE(d.gate_slot);
  EXPECT_EQ(g.waiting(), 0u);
  EXPECT_EQ(g.running(), 2u);

  g.leave(&b);
  g.start_waiting(kNoLimit);
  g.leave(&c);
  g.start_waiting(kNoLimit);
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
  g.start_waiting(kNoLimit);
  EXPECT_FALSE(b.gate_slot);
  EXPECT_TRUE(b.gate_hook.linked());
  g.leave(&b);  // the owner closes the queued one too
  g.start_waiting(kNoLimit);
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
  g.start_waiting(kNoLimit);
  EXPECT_TRUE(b.gate_slot);
  g.leave(&b);
  g.start_waiting(kNoLimit);
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
  g.start_waiting(kNoLimit);
  EXPECT_TRUE(b[1]->gate_slot);
  g.leave(a[0].get());  // b queued before a could start again
  g.start_waiting(kNoLimit);
  EXPECT_TRUE(b[2]->gate_slot);
  EXPECT_FALSE(a[7]->gate_slot);
  g.leave(a[1].get());
  g.start_waiting(kNoLimit);
  EXPECT_TRUE(a[7]->gate_slot);
  EXPECT_FALSE(a[8]->gate_slot);
  EXPECT_EQ(g.running(), 8u);
  for (auto& t : a) g.leave(t.get());
  g.start_waiting(kNoLimit);
  for (auto& t : b) g.leave(t.get());
  g.start_waiting(kNoLimit);
  EXPECT_EQ(g.running(), 0u);
  EXPECT_EQ(g.waiting(), 0u);
}

// Slots freed inside socket events start nobody there: start_waiting()
// does, from the owner's loop, and stops when its time budget is spent
// (after one start at least), leaving has_work() set for the next call. A
// transport that comes meanwhile queues behind those already due a slot.
TEST(HandshakeGate, StartsWaitingOnesOnlyInStartWaitingWithinItsBudget) {
  NoEvents ev;
  TransportEnv env;
  Transport a(env, &ev), b(env, &ev), c(env, &ev), d(env, &ev), e(env, &ev);
  HandshakeGate g(2);
  EXPECT_FALSE(g.has_work());
  EXPECT_TRUE(g.enter(&a));
  EXPECT_TRUE(g.enter(&b));
  EXPECT_FALSE(g.enter(&c));
  EXPECT_FALSE(g.enter(&d));
  g.leave(&a);
  g.leave(&b);
  EXPECT_FALSE(c.gate_slot) << "started from inside leave()";
  EXPECT_TRUE(g.has_work());
  EXPECT_FALSE(g.enter(&e)) << "jumped c and d, which were due the freed slots";

  const TimeBudget spent(0);
  EXPECT_TRUE(g.start_waiting(spent));
  EXPECT_TRUE(c.gate_slot);
  EXPECT_FALSE(d.gate_slot) << "went on past a spent budget";
  EXPECT_TRUE(g.has_work());
  EXPECT_TRUE(g.start_waiting(spent));
  EXPECT_TRUE(d.gate_slot);
  EXPECT_FALSE(e.gate_slot) << "no slot free: the cap still holds";
  g.start_waiting(spent);
  EXPECT_FALSE(g.has_work()) << "nothing can start until a slot frees";
  EXPECT_FALSE(g.start_waiting(kNoLimit));

  g.leave(&c);
  EXPECT_TRUE(g.start_waiting(kNoLimit));
  EXPECT_TRUE(e.gate_slot);
  EXPECT_FALSE(g.has_work());
  g.leave(&d);
  g.leave(&e);
  g.start_waiting(kNoLimit);
  EXPECT_EQ(g.running(), 0u);
  EXPECT_EQ(g.waiting(), 0u);
}

// Transports of one origin over a context that resumes: whether one offers a
// ticket is whether the context holds one for the origin.
struct ProbeFixture : ::testing::Test {
  void SetUp() override {
    std::string err;
    ctx = TlsContext::create(TlsOptions{}, &err);
    ASSERT_NE(ctx, nullptr) << err;
    env.tls = ctx.get();
  }
  std::vector<std::unique_ptr<Transport>> make(size_t n, const void* owner, const std::string* key) {
    std::vector<std::unique_ptr<Transport>> v;
    for (size_t i = 0; i < n; ++i) {
      v.push_back(std::make_unique<Transport>(env, &ev));
      v.back()->gate_owner = owner;
      v.back()->ticket_key = key;
    }
    return v;
  }
  NoEvents ev;
  TransportEnv env;  // no gate in env: destruction must not call back into it here
  std::unique_ptr<TlsContext> ctx;
  const std::string origin = "https://far.example:443";
};

// Without a ticket, the first handshake probes; others take the free full
// slots, and past the cap they wait for the probe's ticket, which starts
// them all at once as resumed handshakes, past the full cap (which would
// take ceil(n / cap) round trips).
TEST_F(ProbeFixture, PastTheCapTheyWaitForTheProbesTicketThenStartTogetherResumed) {
  HandshakeGate g(2);
  int owner = 0;
  auto t = make(6, &owner, &origin);
  EXPECT_TRUE(g.enter(t[0].get()));
  EXPECT_TRUE(t[0]->gate_probe);
  EXPECT_TRUE(g.enter(t[1].get())) << "a full slot is free: no reason to wait";
  EXPECT_FALSE(t[1]->gate_probe);
  for (size_t i = 2; i < 6; ++i) EXPECT_FALSE(g.enter(t[i].get())) << i;
  EXPECT_EQ(g.running(), 2u);
  EXPECT_EQ(g.waiting(), 4u);
  g.leave(t[0].get());  // the probe's handshake is done; its ticket is not here yet
  g.start_waiting(kNoLimit);
  EXPECT_EQ(t[2]->gate_slot, 1) << "the freed full slot goes to the next in line";
  EXPECT_EQ(g.running(), 2u);
  EXPECT_EQ(g.waiting(), 3u);
  ctx->store_session(origin, SSL_SESSION_new());
  g.probe_over(t[0].get(), true);
  g.start_waiting(kNoLimit);
  EXPECT_FALSE(t[0]->gate_probe);
  EXPECT_EQ(g.running(), 5u) << "resumed handshakes are not held to the full cap of 2";
  EXPECT_EQ(g.waiting(), 0u);
  for (size_t i = 3; i < 6; ++i) EXPECT_EQ(t[i]->gate_slot, 2) << i;
  // A transport that comes now offers the ticket and starts at once.
  auto late = make(1, &owner, &origin);
  EXPECT_TRUE(g.enter(late[0].get()));
  EXPECT_FALSE(late[0]->gate_probe);
  for (auto& x : t) g.leave(x.get());
  g.start_waiting(kNoLimit);
  g.leave(late[0].get());
  g.start_waiting(kNoLimit);
  EXPECT_EQ(g.running(), 0u);
  EXPECT_TRUE(g.burst_ended()) << "6 at once is more than the full cap";
  EXPECT_FALSE(g.burst_ended()) << "once per burst";
}

// A probe answered before any ticket came: this server gives none, so the
// waiting ones queue for full slots under the cap, and nobody probes again.
TEST_F(ProbeFixture, AProbeWithoutATicketLetsTheOthersQueueForFullSlots) {
  HandshakeGate g(2);
  int owner = 0;
  auto t = make(4, &owner, &origin);
  EXPECT_TRUE(g.enter(t[0].get()));
  EXPECT_TRUE(g.enter(t[1].get()));
  EXPECT_FALSE(g.enter(t[2].get()));
  EXPECT_FALSE(g.enter(t[3].get()));
  g.probe_over(t[0].get(), false);
  g.start_waiting(kNoLimit);
  EXPECT_EQ(g.running(), 2u) << "still held to the cap";
  EXPECT_EQ(g.waiting(), 2u);
  g.leave(t[0].get());
  g.start_waiting(kNoLimit);
  EXPECT_EQ(t[2]->gate_slot, 1);
  EXPECT_FALSE(t[2]->gate_probe) << "no probing after a ticketless one";
  g.leave(t[1].get());
  g.start_waiting(kNoLimit);
  EXPECT_EQ(t[3]->gate_slot, 1);
  EXPECT_FALSE(t[3]->gate_probe);
  g.leave(t[2].get());
  g.start_waiting(kNoLimit);
  g.leave(t[3].get());
  g.start_waiting(kNoLimit);
  EXPECT_EQ(g.running(), 0u);
  EXPECT_FALSE(g.burst_ended()) << "never more than the cap at once";
}

// A probe that fails (a dead server, a reset) hands the probe to the next
// ticketless transport of its origin, and those waiting past the cap keep
// waiting for that one.
TEST_F(ProbeFixture, AFailedProbePassesTheProbeOn) {
  HandshakeGate g(2);
  int a = 0;
  auto ta = make(4, &a, &origin);
  EXPECT_TRUE(g.enter(ta[0].get()));
  EXPECT_TRUE(g.enter(ta[1].get()));
  EXPECT_FALSE(g.enter(ta[2].get()));
  EXPECT_FALSE(g.enter(ta[3].get()));
  g.forget(ta[0].get());
  g.start_waiting(kNoLimit);
  EXPECT_FALSE(ta[0]->gate_probe);
  EXPECT_EQ(ta[2]->gate_slot, 1);
  EXPECT_TRUE(ta[2]->gate_probe) << "the next one probes";
  EXPECT_EQ(ta[3]->gate_slot, 0);
  EXPECT_TRUE(ta[3]->gate_hook.linked());
  g.forget(ta[3].get());  // gives up while waiting
  g.start_waiting(kNoLimit);
  EXPECT_EQ(g.waiting(), 0u);
  g.forget(ta[1].get());
  g.start_waiting(kNoLimit);
  g.forget(ta[2].get());
  g.start_waiting(kNoLimit);
  EXPECT_EQ(g.running(), 0u);
}

// One origin waiting for its probe's ticket holds back nobody else: another
// origin takes the slot kept out of its reach and probes on its own.
TEST_F(ProbeFixture, OtherOriginsDoNotWaitForOnesProbe) {
  HandshakeGate g(8);
  int a = 0, b = 0;
  const std::string other = "https://near.example:443";
  auto ta = make(8, &a, &origin);
  auto tb = make(1, &b, &other);
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(g.enter(ta[i].get()), i < 7) << i;
  EXPECT_TRUE(g.enter(tb[0].get()));
  EXPECT_TRUE(tb[0]->gate_probe);
  for (auto& x : ta) g.forget(x.get());
  g.start_waiting(kNoLimit);
  g.forget(tb[0].get());
  g.start_waiting(kNoLimit);
  EXPECT_EQ(g.running(), 0u);
  EXPECT_EQ(g.waiting(), 0u);
}

// With resumption off there is no probe: full handshakes up to the cap.
TEST_F(ProbeFixture, NoProbeWhenResumptionIsOff) {
  TlsOptions off;
  off.resume = false;
  std::string err;
  auto plain = TlsContext::create(off, &err);
  ASSERT_NE(plain, nullptr) << err;
  env.tls = plain.get();
  HandshakeGate g(2);
  int owner = 0;
  auto t = make(3, &owner, &origin);
  EXPECT_TRUE(g.enter(t[0].get()));
  EXPECT_TRUE(g.enter(t[1].get()));
  EXPECT_FALSE(g.enter(t[2].get()));
  EXPECT_FALSE(t[0]->gate_probe);
  for (auto& x : t) g.forget(x.get());
  g.start_waiting(kNoLimit);
  env.tls = ctx.get();
}

}  // namespace
}  // namespace barrage
