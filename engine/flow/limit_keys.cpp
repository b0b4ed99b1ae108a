// LimitKeys: admission through each key's gate, its FIFO and timer.
#include "flow/limit_keys.hpp"

#include <algorithm>

namespace barrage {

namespace {
uint64_t ceil_ms(uint64_t ns) noexcept { return (ns + 999999) / 1000000; }
}  // namespace

LimitKeys::~LimitKeys() {
  for (auto& [name, k] : keys_) {
    if (k->timer.armed()) wheel_.cancel(k->timer);
    if (k->shared && shared_) shared_->forget(*k);
    if (k->starved_hook.linked()) starved_.remove(k->starved_hook);
  }
}

LimitKey* LimitKeys::key(const std::string& name, uint64_t now_ns) noexcept {
  try {
    auto& k = keys_[name];
    if (!k) {
      if (shared_ && (limits_.requests_per_period > 0 || limits_.tokens_per_minute > 0)) {
        // The buckets are Redis's; the gate keeps cooldown and breaker.
        FlowLimits local = limits_;
        local.requests_per_period = local.tokens_per_minute = 0;
        k = std::make_unique<LimitKey>(*this, name, local, now_ns);
        k->shared = std::make_unique<SharedQuota>(limits_, shared_->tuning(), now_ns);
      } else {
        k = std::make_unique<LimitKey>(*this, name, limits_, now_ns);
      }
      k->timer.fn = on_timer;
      k->timer.ctx = k.get();
    }
    return k.get();
  } catch (...) {
    return nullptr;
  }
}

LimitKeys::Admit LimitKeys::admit(LimitKey& k, KeyWaiter& w, uint64_t now_ns) noexcept {
  if (k.waiting.empty()) {
    uint64_t retry_at = 0;
    switch (acquire(k, w.tokens, now_ns, &retry_at)) {
      case RateGate::Verdict::go:
        w.probe = k.gate.take_probe_grant();
        return Admit::go;
      case RateGate::Verdict::reject:
        counters_.rejected.add();
        return Admit::reject;
      case RateGate::Verdict::wait:
        arm(k, retry_at);
        break;
    }
  }
  k.waiting.push_back(w.key_hook, &w);
  counters_.waiting_rate.add();
  if (k.shared) shared_->poke(k);
  return Admit::wait;
}

// A shared key asks its lease first (without taking), so the gate's
// breaker probe is granted only to a request that can go.
RateGate::Verdict LimitKeys::acquire(LimitKey& k, int64_t tokens, uint64_t now_ns, uint64_t* retry_at) noexcept {
  if (k.shared) {
    uint64_t ready = k.shared->ready_at(tokens, now_ns);
    if (ready > now_ns) {
      *retry_at = std::max(ready, k.gate.cooldown_end());
      return RateGate::Verdict::wait;
    }
  }
  RateGate::Verdict v = k.gate.acquire(tokens, now_ns, retry_at);
  if (v == RateGate::Verdict::go && k.shared) {
    k.shared->try_take(tokens, now_ns);  // ready_at said now
    shared_->poke(k);
  }
  return v;
}

void LimitKeys::wake(LimitKey& k) noexcept {
  bool fb = k.shared && k.shared->fallen_back();
  if (fb != k.fallen_back) {
    k.fallen_back = fb;
    fb ? counters_.shared_fallback_keys.add() : counters_.shared_fallback_keys.sub();
  }
  uint64_t now = clock_.now_ns();
  refresh(k, now);
  if (!k.waiting.empty()) arm(k, now);
}

void LimitKeys::withdraw(LimitKey& k, KeyWaiter& w) noexcept {
  if (!w.key_hook.linked()) return;
  k.waiting.remove(w.key_hook);
  counters_.waiting_rate.sub();
  if (k.waiting.empty() && k.starved_hook.linked()) starved_.remove(k.starved_hook);
}

void LimitKeys::offer_slots() noexcept {
  while (client_->slot_free()) {
    LimitKey* k = starved_.pop_front();
    if (!k) return;
    pump(*k);  // re-joins the back of the list if the slots run out again
  }
}

void LimitKeys::on_timer(void* ctx) noexcept {
  auto* k = static_cast<LimitKey*>(ctx);
  k->owner.pump(*k);
}

void LimitKeys::pump(LimitKey& k) noexcept {
  uint64_t now = clock_.now_ns();
  refresh(k, now);
  while (KeyWaiter* w = k.waiting.front()) {
    if (!client_->slot_free()) {
      if (!k.starved_hook.linked()) starved_.push_back(k.starved_hook, &k);
      return;
    }
    uint64_t retry_at = 0;
    RateGate::Verdict v = acquire(k, w->tokens, now, &retry_at);
    if (v == RateGate::Verdict::wait) {
      arm(k, retry_at);
      if (k.shared) shared_->poke(k);
      return;
    }
    k.waiting.remove(w->key_hook);
    counters_.waiting_rate.sub();
    if (v == RateGate::Verdict::go) {
      w->probe = k.gate.take_probe_grant();
      client_->key_granted(w);
    } else {
      counters_.rejected.add();
      client_->key_rejected(w, k);
    }
  }
}

void LimitKeys::arm(LimitKey& k, uint64_t at_ns) noexcept {
  if (at_ns == UINT64_MAX) return;  // a shared key's round trip will wake it
  uint64_t at = ceil_ms(at_ns);
  if (!k.timer.armed() || k.timer.expiry() > at) wheel_.arm(k.timer, at);
}

void LimitKeys::report(LimitKey& k, KeyWaiter& w, int verdict, uint64_t now_ns) noexcept {
  const bool was_probe = w.probe;
  if (verdict > 0)
    k.gate.record_success();
  else if (verdict < 0)
    k.gate.record_failure(now_ns);
  else if (w.probe)
    k.gate.abandon_probe();
  w.probe = false;
  refresh(k, now_ns);
  // Requests held back while a probe was out slept until the end of a
  // pause: a probe's verdict (or a success closing the breaker) wakes them
  // now, to go, to fail fast, or to become the next probe.
  if ((was_probe || verdict > 0) && !k.waiting.empty()) arm(k, now_ns);
}

void LimitKeys::observe(LimitKey& k, KeyWaiter& w, const AnswerFacts& a, int64_t fallback_pause_ms,
                        uint64_t now_ns) noexcept {
  k.gate.observe_limits(a.remaining_requests, a.reset_requests_ns, a.remaining_tokens, a.reset_tokens_ns, now_ns);
  if (a.http_status == 429 || a.http_status == 503) {
    // The key cools down: nothing of it starts before the server's instant.
    int64_t pause = a.retry_after_ms >= 0 ? a.retry_after_ms : fallback_pause_ms;
    k.gate.cool_down_until(now_ns + uint64_t(pause) * 1000000);
    if (k.shared) k.shared->cool_down(pause);  // for every process
  }
  if (k.shared) k.shared->clamp(a.remaining_requests, a.remaining_tokens);
  if (a.http_status == 429) {
    counters_.throttled.add();
    credit(k, w.tokens, now_ns);  // refused, so no tokens were spent
  }
  refresh(k, now_ns);
  if (k.shared) shared_->poke(k);
}

// Tokens given back may let waiting requests go before the key's timer,
// which was armed for the pessimistic case: wake the queue now.
void LimitKeys::credit(LimitKey& k, int64_t tokens, uint64_t now_ns) noexcept {
  if (tokens <= 0) return;
  if (k.shared) {
    k.shared->refund(tokens, now_ns);
    shared_->poke(k);
  }
  k.gate.refund(tokens, now_ns);
  if (!k.waiting.empty()) arm(k, now_ns);
}

void LimitKeys::settle(LimitKey& k, int64_t estimated, int64_t actual, uint64_t now_ns) noexcept {
  k.gate.settle(estimated, actual, now_ns);
  if (k.shared) {
    k.shared->settle(estimated, actual, now_ns);
    shared_->poke(k);
  }
  if (actual >= 0 && actual < estimated && !k.waiting.empty()) arm(k, now_ns);
}

// The stats count keys in cooldown or with an open breaker; the key timer
// runs when either ends, so the counts fall back in time.
void LimitKeys::refresh(LimitKey& k, uint64_t now_ns) noexcept {
  bool cooling = k.gate.cooling(now_ns);
  if (cooling != k.cooling) {
    k.cooling = cooling;
    cooling ? counters_.cooling_keys.add() : counters_.cooling_keys.sub();
    if (cooling) arm(k, k.gate.cooldown_end());
  }
  bool open = k.gate.breaker_open(now_ns);
  if (open != k.breaker) {
    k.breaker = open;
    open ? counters_.breaker_open_keys.add() : counters_.breaker_open_keys.sub();
    if (open) arm(k, now_ns + uint64_t(limits_.breaker_pause_ms) * 1000000);
  }
}

}  // namespace barrage
