// Admission of TLS handshakes, fair between origins, with the ticket probe;
// see handshake_gate.hpp.
#include "pool/handshake_gate.hpp"

#include <algorithm>

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
  // An origin that proved ticketless keeps its record so it is not probed again.
  if (&o == &fallback_ || o.running != 0 || o.probe || o.no_tickets || !o.queue.empty()) return;
  if (o.ready_hook.linked()) ready_.remove(o.ready_hook);
  owners_.erase(c->gate_owner);
}

HandshakeGate::Slot HandshakeGate::slot_for(const Transport* c, const Owner& o) const noexcept {
  if (c->offers_ticket()) return resumed;
  // Past the full cap, wait for the probe's ticket rather than for a full
  // slot: it is on the way and frees everyone at once. Below the cap a full
  // handshake now is faster (HTTP/2's ten connections need no ticket).
  if (o.probe && o.probe != c && !o.no_tickets && !can_take(full, o)) return none;
  return full;
}

bool HandshakeGate::can_take(Slot s, const Owner& o) const noexcept {
  switch (s) {
    case resumed: return running_resumed_ < resumed_cap_;
    case full: return running_ < cap_ && o.running < owner_cap();
    case none: break;
  }
  return false;
}

void HandshakeGate::take(Transport* c, Owner& o, Slot s) noexcept {
  if (s == resumed) {
    ++running_resumed_;
  } else {
    ++running_;
    ++o.running;
    // The first ticketless handshake of an origin that may resume probes.
    if (!o.probe && !o.no_tickets && c->may_resume() && &o != &fallback_) {
      o.probe = c;
      c->gate_probe = true;
    }
  }
  c->gate_slot = s;
  burst_peak_ = std::max(burst_peak_, running_ + running_resumed_);
}

void HandshakeGate::mark_ready(Owner& o) noexcept {
  if (o.queue.empty() || o.ready_hook.linked()) return;
  Slot s = slot_for(o.queue.front(), o);
  if (s == resumed || (s == full && o.running < owner_cap())) {
    ready_.push_back(o.ready_hook, &o);
    unsettled_ = true;
  }
}

bool HandshakeGate::enter(Transport* c) noexcept {
  Owner& o = owner_of(c);
  // While start_waiting() has work, someone queued may be due the free
  // slot: queue behind them rather than jump them.
  Slot s = slot_for(c, o);
  if (o.queue.empty() && !unsettled_ && can_take(s, o)) {
    take(c, o, s);
    return true;
  }
  o.queue.push_back(c->gate_hook, c);
  ++waiting_;
  mark_ready(o);
  return false;
}

void HandshakeGate::forget(Transport* c) noexcept {
  if (c->gate_probe) end_probe(c, owner_of(c), false);  // failed or closed: another may probe
  leave(c);
}

void HandshakeGate::leave(Transport* c) noexcept {
  Owner& o = owner_of(c);
  if (c->gate_hook.linked()) {
    o.queue.remove(c->gate_hook);
    --waiting_;
    if (o.ready_hook.linked()) ready_.remove(o.ready_hook);
    mark_ready(o);
    forget_if_unused(c, o);
    return;
  }
  if (c->gate_slot == none) {
    forget_if_unused(c, o);
    return;
  }
  if (c->gate_slot == resumed) {
    --running_resumed_;
  } else {
    --running_;
    --o.running;
  }
  c->gate_slot = none;
  if (running_ + running_resumed_ == 0 && burst_peak_ > cap_) burst_over_ = true;
  if (!ready_.empty()) unsettled_ = true;  // an owner blocked on this kind of slot may go
  mark_ready(o);
  forget_if_unused(c, o);
}

void HandshakeGate::probe_over(Transport* c, bool got_ticket) noexcept {
  if (!c->gate_probe) return;
  Owner& o = owner_of(c);
  end_probe(c, o, !got_ticket);
  mark_ready(o);
  forget_if_unused(c, o);
}

void HandshakeGate::end_probe(Transport* c, Owner& o, bool ticketless) noexcept {
  c->gate_probe = false;
  if (o.probe == c) o.probe = nullptr;
  if (ticketless) o.no_tickets = true;
}

bool HandshakeGate::burst_ended() noexcept {
  if (!burst_over_) return false;
  burst_over_ = false;
  burst_peak_ = running_ + running_resumed_;
  return true;
}

bool HandshakeGate::start_waiting(const TimeBudget& budget) noexcept {
  if (starting_ || stopped_ || !unsettled_) return false;
  starting_ = true;
  bool started = false, stopped = false;
  // Owners whose next transport needs a kind of slot that is all taken wait
  // aside, keeping their turn, while the others may use the other kind.
  IntrusiveList<Owner> blocked;
  while (Owner* o = ready_.pop_front()) {
    if (started && budget.spent()) {
      ready_.push_front(o->ready_hook, o);
      stopped = true;
      break;
    }
    Transport* next = o->queue.front();
    Slot s = slot_for(next, *o);
    if (s == none || (s == full && o->running >= owner_cap())) continue;  // re-marked when that changes
    if (!can_take(s, *o)) {
      blocked.push_back(o->ready_hook, o);
      continue;
    }
    o->queue.pop_front();
    --waiting_;
    take(next, *o, s);
    mark_ready(*o);  // to the back: origins take turns
    next->start_handshake();  // may fail at once and leave() again: counted above
    started = true;
  }
  // Back in line in their order, ahead of any not reached: they came first.
  while (Owner* o = ready_.pop_front()) blocked.push_back(o->ready_hook, o);
  while (Owner* o = blocked.pop_front()) ready_.push_back(o->ready_hook, o);
  unsettled_ = stopped;
  starting_ = false;
  return started;
}

}  // namespace barrage
