// How many TLS handshakes run at once, engine-wide, and which wait for an
// origin's first session ticket. A full handshake holds ~40-60 KiB of
// transient OpenSSL state (record buffers, the certificate message, key
// shares); a thousand at once leave the heap so fragmented that an idle
// transport then costs more than its live size in RSS. Transports past the
// caps wait here, connected, each starting when its turn comes.
//
// Two kinds of slot:
// - full handshakes (no ticket to offer): at most `cap` at once, and one
//   origin at most cap - cap/8 of them (all below a cap of 8, where a
//   reserve would halve a single origin's ramp), so a server that never
//   answers its ClientHellos cannot stall the healthy ones behind its
//   connect timeout;
// - resumed ones (the origin has a ticket to offer): no certificate to
//   send, parse or verify, so up to kResumedFactor x cap at once. The heap
//   they leave behind is free memory, not fragments: once such a burst is
//   over, burst_ended() says so and the pool gives it back to the system.
//
// The ticket probe: while an origin has no ticket and resumption is on, its
// first ticketless handshake is the probe. Others take full slots while
// there are any; past the cap they wait for the probe's ticket (then they
// start as resumed handshakes, all at once) rather than for full slots, or
// until the probe is over without one (it failed, or application data came
// first: that server gives none), from when on they queue for full slots.
// Over a far link this turns ceil(N/cap) round trips of full handshakes
// into one for the first cap, one for the ticket, and one for all the rest.
//
// Each origin's transports start in FIFO order; origins take turns (round
// robin) for freed slots. Nobody starts from inside leave(), forget() or
// probe_over(), which run in socket events: the owner calls start_waiting()
// from its own loop with a time budget, because one ticket can free
// hundreds of transports and each start costs a ClientHello (a key share
// and a send): ~100-250 us, so 450 of them held a turn for 115 ms.
#pragma once

#include <cstddef>
#include <memory>
#include <unordered_map>

#include "loop/intrusive_list.hpp"
#include "loop/time_budget.hpp"

namespace barrage {

class Transport;

class HandshakeGate {
 public:
  static constexpr size_t kResumedFactor = 16;

  explicit HandshakeGate(size_t cap) noexcept : cap_(cap == 0 ? 1 : cap), resumed_cap_(cap_ * kResumedFactor) {}
  HandshakeGate(const HandshakeGate&) = delete;
  HandshakeGate& operator=(const HandshakeGate&) = delete;

  // true: c holds a slot and starts now. false: c waits; start_waiting()
  // calls c->start_handshake() when its turn comes.
  bool enter(Transport* c) noexcept;
  // Starts waiting transports whose slot is free, in turn, until none can
  // or the budget is spent. True when it started any.
  bool start_waiting(const TimeBudget& budget) noexcept;
  // Slots were freed or transports queued since start_waiting() last
  // finished: it has work (the owner must not sleep on it).
  bool has_work() const noexcept { return unsettled_ && !stopped_; }
  // c's handshake is done: its slot goes to the next in line. Idempotent.
  void leave(Transport* c) noexcept;
  // c failed or closed, queued or holding a slot or probing: it leaves, and
  // if it was its origin's probe, the next ticketless transport probes.
  void forget(Transport* c) noexcept;
  // c, its origin's ticket probe, is over: its origin now has a ticket, or
  // application data arrived before any (the server gives none).
  void probe_over(Transport* c, bool got_ticket) noexcept;

  // From now on a freed slot starts nobody: the owner is tearing down and
  // closes every transport, queued ones included.
  void stop() noexcept { stopped_ = true; }

  // True once after the handshakes running went back to none, when more
  // than `cap` ran at once since the last time: a burst left free heap.
  bool burst_ended() noexcept;

  size_t running() const noexcept { return running_ + running_resumed_; }
  size_t waiting() const noexcept { return waiting_; }
  // Most full-handshake slots one origin may hold.
  size_t owner_cap() const noexcept { return cap_ >= 8 ? cap_ - cap_ / 8 : cap_; }

 private:
  struct Owner {
    size_t running = 0;          // full-handshake slots held
    Transport* probe = nullptr;  // the ticket probe, until it is over
    bool no_tickets = false;     // a probe ended without one: no more probing
    IntrusiveList<Transport> queue;
    ListHook<Owner> ready_hook;  // in ready_: its first queued transport may start
  };
  enum Slot : unsigned char { none = 0, full = 1, resumed = 2 };

  Owner& owner_of(const Transport* c) noexcept;
  void forget_if_unused(const Transport* c, Owner& o) noexcept;
  // Which slot c would take now, or none while it must wait for a probe.
  Slot slot_for(const Transport* c, const Owner& o) const noexcept;
  bool can_take(Slot s, const Owner& o) const noexcept;
  void end_probe(Transport* c, Owner& o, bool ticketless) noexcept;
  void take(Transport* c, Owner& o, Slot s) noexcept;
  void mark_ready(Owner& o) noexcept;

  size_t cap_;
  size_t resumed_cap_;
  size_t running_ = 0;          // full handshakes
  size_t running_resumed_ = 0;  // resumed ones
  size_t waiting_ = 0;
  size_t burst_peak_ = 0;       // most running at once since the last burst_ended()
  bool burst_over_ = false;
  bool starting_ = false;       // a start may end in leave(): no recursion
  bool unsettled_ = false;      // see has_work()
  bool stopped_ = false;
  std::unordered_map<const void*, std::unique_ptr<Owner>> owners_;
  Owner fallback_;  // when a record cannot be allocated: shared by all such transports
  IntrusiveList<Owner> ready_;
};

}  // namespace barrage
