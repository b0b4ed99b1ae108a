// FIFO admission of TLS handshakes; see handshake_gate.hpp.
#include "pool/handshake_gate.hpp"

#include "pool/transport.hpp"

namespace barrage {

bool HandshakeGate::enter(Transport* c) noexcept {
  if (running_ < cap_ && queue_.empty()) {
    ++running_;
    c->gate_slot = true;
    return true;
  }
  queue_.push_back(c->gate_hook, c);
  return false;
}

void HandshakeGate::leave(Transport* c) noexcept {
  if (c->gate_hook.linked()) {
    queue_.remove(c->gate_hook);
    return;
  }
  if (!c->gate_slot) return;
  c->gate_slot = false;
  --running_;
  if (starting_ || stopped_) return;
  starting_ = true;
  while (running_ < cap_) {
    Transport* next = queue_.pop_front();
    if (!next) break;
    ++running_;
    next->gate_slot = true;
    next->start_handshake();  // may fail at once and leave() again: counted above
  }
  starting_ = false;
}

}  // namespace barrage
