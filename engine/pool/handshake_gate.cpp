// Admission of TLS handshakes, fair between origins; see handshake_gate.hpp.
#include "pool/handshake_gate.hpp"

#include "pool/transport.hpp"

namespace barrage {

HandshakeGate::Owner& HandshakeGate::owner_of(const Transport* c) noexcept {
  try {
    auto& slot = owners_[c->gate_owner];
    if (!slot) slot = std::make_unique<Owner>();
    return *slot;
  } catch (...) {
    return fallback_;
  }
}

void HandshakeGate::forget_if_unused(const Transport* c, Owner& o) noexcept {
  if (&o == &fallback_ || o.running != 0 || !o.queue.empty()) return;
  if (o.ready_hook.linked()) ready_.remove(o.ready_hook);
  owners_.erase(c->gate_owner);
}

void HandshakeGate::mark_ready(Owner& o) noexcept {
  if (!o.queue.empty() && o.running < owner_cap() && !o.ready_hook.linked()) ready_.push_back(o.ready_hook, &o);
}

bool HandshakeGate::enter(Transport* c) noexcept {
  Owner& o = owner_of(c);
  // Nothing queued can start while a slot is free (start_waiting drains
  // ready_), so a transport that may start does not jump anyone.
  if (running_ < cap_ && o.running < owner_cap() && o.queue.empty()) {
    ++running_;
    ++o.running;
    c->gate_slot = true;
    return true;
  }
  o.queue.push_back(c->gate_hook, c);
  ++waiting_;
  mark_ready(o);
  return false;
}

void HandshakeGate::leave(Transport* c) noexcept {
  if (c->gate_hook.linked()) {
    Owner& o = owner_of(c);
    o.queue.remove(c->gate_hook);
    --waiting_;
    if (o.queue.empty() && o.ready_hook.linked()) ready_.remove(o.ready_hook);
    forget_if_unused(c, o);
    return;
  }
  if (!c->gate_slot) return;
  c->gate_slot = false;
  --running_;
  Owner& o = owner_of(c);
  --o.running;
  mark_ready(o);
  forget_if_unused(c, o);
  start_waiting();
}

void HandshakeGate::start_waiting() noexcept {
  if (starting_ || stopped_) return;
  starting_ = true;
  while (running_ < cap_) {
    Owner* o = ready_.pop_front();
    if (!o) break;
    Transport* next = o->queue.pop_front();
    --waiting_;
    ++running_;
    ++o->running;
    next->gate_slot = true;
    mark_ready(*o);  // to the back: origins take turns
    next->start_handshake();  // may fail at once and leave() again: counted above
  }
  starting_ = false;
}

}  // namespace barrage
