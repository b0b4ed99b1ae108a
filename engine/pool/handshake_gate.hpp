// How many TLS handshakes run at once, engine-wide. A handshake holds ~40-60
// KiB of transient OpenSSL state (record buffers, the certificate message,
// key shares); a thousand at once leave the heap so fragmented that an idle
// transport then costs twice its live size in RSS. Transports past the cap
// wait here, connected, each starting when a slot frees.
//
// Slots are shared between origins (a transport's gate_owner): one origin may
// hold at most cap - cap/8 of them (all below a cap of 8, where a reserve
// would halve a single origin's ramp), so a server that never
// answers its ClientHellos cannot take every slot and stall the healthy ones
// behind its connect timeout. Each origin's transports start in FIFO order;
// origins take turns (round robin) for freed slots.
#pragma once

#include <cstddef>
#include <memory>
#include <unordered_map>

#include "loop/intrusive_list.hpp"

namespace barrage {

class Transport;

class HandshakeGate {
 public:
  explicit HandshakeGate(size_t cap) noexcept : cap_(cap == 0 ? 1 : cap) {}
  HandshakeGate(const HandshakeGate&) = delete;
  HandshakeGate& operator=(const HandshakeGate&) = delete;

  // true: c holds a slot and starts now. false: c waits; the gate calls
  // c->start_handshake() when its turn comes.
  bool enter(Transport* c) noexcept;
  // c's handshake ended (done, failed or closed) or c left the queue.
  // Idempotent; starts waiting transports up to the cap.
  void leave(Transport* c) noexcept;

  // From now on a freed slot starts nobody: the owner is tearing down and
  // closes every transport, queued ones included.
  void stop() noexcept { stopped_ = true; }

  size_t running() const noexcept { return running_; }
  size_t waiting() const noexcept { return waiting_; }
  // Most slots one origin may hold.
  size_t owner_cap() const noexcept { return cap_ >= 8 ? cap_ - cap_ / 8 : cap_; }

 private:
  struct Owner {
    size_t running = 0;
    IntrusiveList<Transport> queue;
    ListHook<Owner> ready_hook;  // in ready_: queued transports and below owner_cap
  };
  Owner& owner_of(const Transport* c) noexcept;
  void forget_if_unused(const Transport* c, Owner& o) noexcept;
  void mark_ready(Owner& o) noexcept;
  void start_waiting() noexcept;

  size_t cap_;
  size_t running_ = 0;
  size_t waiting_ = 0;
  bool starting_ = false;  // a start below may end in leave(): no recursion
  bool stopped_ = false;
  std::unordered_map<const void*, std::unique_ptr<Owner>> owners_;
  Owner fallback_;  // when a record cannot be allocated: shared by all such transports
  IntrusiveList<Owner> ready_;
};

}  // namespace barrage
