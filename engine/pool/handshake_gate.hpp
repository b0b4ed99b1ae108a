// How many TLS handshakes run at once, engine-wide. A handshake holds ~40-60
// KiB of transient OpenSSL state (record buffers, the certificate message,
// key shares); a thousand at once leave the heap so fragmented that an idle
// transport then costs twice its live size in RSS. Transports past the cap
// wait here, connected, in FIFO order; each starts when a slot frees.
#pragma once

#include <cstddef>

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
  size_t waiting() const noexcept { return queue_.size(); }

 private:
  size_t cap_;
  size_t running_ = 0;
  bool starting_ = false;  // a start below may end in leave(): no recursion
  bool stopped_ = false;
  IntrusiveList<Transport> queue_;
};

}  // namespace barrage
