// SharedLimits: a key's lease round trip, from the SharedQuota's ask to its answer.
#include "flow/shared_limits.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>

#include "flow/shared_quota_lua.h"

namespace barrage {

namespace {

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6f", v);
  return buf;
}

// Unique among processes and hosts sharing the Redis: host, pid, randomness.
std::string make_process_id() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::random_device rd;
  return std::string(host) + ":" + std::to_string(getpid()) + ":" + std::to_string(rd());
}

}  // namespace

SharedLimits::SharedLimits(const SharedSettings& s, Backend& backend, TimerWheel& wheel, const Clock& clock,
                           LimitKeys& keys)
    : settings_(s),
      wheel_(wheel),
      clock_(clock),
      keys_(keys),
      link_(backend, wheel, clock, s.endpoint, s.timeout_ms),
      sub_link_(backend, wheel, clock, s.endpoint, s.timeout_ms),
      process_id_(make_process_id()) {
  // Every key falls back together the moment the link drops, not each at
  // its next round trip: keys still on leases while others have left Redis
  // would take the whole limit on top of the others' local shares.
  link_.on_down([this] {
    if (closing_) return;
    const uint64_t now = clock_.now_ns();
    for (auto& [channel, k] : by_channel_) {
      const bool was = k->shared->fallen_back();
      k->shared->failed(now);
      note_mode(*k, was);
      keys_.wake(*k);
    }
  });
}

SharedLimits::~SharedLimits() { closing_ = true; }

void SharedLimits::forget(LimitKey& k) noexcept {
  wheel_.cancel(k.ask_timer);
  by_channel_.erase(redis_key(k) + ":cool");
}

// Every key's Redis names share one hash tag, so a cluster keeps them together.
std::string SharedLimits::redis_key(const LimitKey& k) const { return "{" + settings_.name_space + ":" + k.name + "}"; }

void SharedLimits::subscribe() {
  subscribed_ = true;
  sub_link_.psubscribe("{" + settings_.name_space + ":*}:cool", [this](const RedisReply& r) {
    if (closing_) return;
    if (!r.ok) {
      subscribed_ = false;  // the next poke subscribes again
      return;
    }
    on_cooldown(r);
  });
}

void SharedLimits::on_cooldown(const RedisReply& r) {
  if (r.strings.size() != 4 || r.strings[0] != "pmessage") return;  // the confirmation
  auto it = by_channel_.find(r.strings[2]);
  if (it == by_channel_.end()) return;
  int64_t ms = std::atoll(r.strings[3].c_str());
  if (ms <= 0) return;
  LimitKey& k = *it->second;
  k.gate.cool_down_until(clock_.now_ns() + uint64_t(ms) * 1000000);
  keys_.wake(k);
}

void SharedLimits::on_ask_timer(void* ctx) noexcept {
  auto* k = static_cast<LimitKey*>(ctx);
  k->owner.wake(*k);  // waiters retry what they hold, and the key asks if it should
  if (SharedAsker* asker = k->owner.shared()) asker->poke(*k);
}

void SharedLimits::poke(LimitKey& k) noexcept {
  if (closing_ || !k.shared) return;
  if (!subscribed_) subscribe();
  if (!k.ask_timer.fn) {  // first sight of the key
    k.ask_timer.fn = on_ask_timer;
    k.ask_timer.ctx = &k;
    try {
      by_channel_[redis_key(k) + ":cool"] = &k;
    } catch (...) {
    }
  }
  const uint64_t now = clock_.now_ns();
  const size_t waiting = k.waiting.size();
  const int64_t head = waiting ? k.waiting.front()->tokens : 0;
  if (std::optional<LeaseAsk> a = k.shared->ask(waiting, head, now)) {
    try {
      send(k, *a);
    } catch (...) {
      k.shared->failed(now);
    }
    return;
  }
  uint64_t at = k.shared->next_ask_at(waiting, head, now);
  if (at == UINT64_MAX) return;
  uint64_t ms = (at + 999999) / 1000000;
  if (!k.ask_timer.armed() || k.ask_timer.expiry() != ms) wheel_.arm(k.ask_timer, ms);
}

void SharedLimits::send(LimitKey& k, const LeaseAsk& a) {
  const SharedQuota& q = *k.shared;
  const std::string base = redis_key(k);
  std::vector<std::string> args = {"4", base + ":r", base + ":t", base + ":cool", base + ":live", process_id_,
                                   std::to_string(settings_.tuning.horizon_ns / 1000),
                                   std::to_string(3 * settings_.tuning.rejoin_ns / 1000000 + 2000),
                                   std::to_string(a.cooldown_ms)};
  auto bucket = [&](double interval_us, int64_t burst, const LeaseBucketAsk& b) {
    for (const std::string& v : {number(interval_us), std::to_string(burst), std::to_string(b.adjust),
                                 std::to_string(b.min), std::to_string(b.max), std::to_string(b.clamp)})
      args.push_back(v);
  };
  bucket(q.request_interval_us(), q.request_burst(), a.requests);
  bucket(q.token_interval_us(), q.token_burst(), a.tokens);
  LimitKey* key = &k;
  const uint64_t sent_at = clock_.now_ns();
  link_.eval(kSharedQuotaLua, settings_.script_sha, args, [this, key, sent_at](const RedisReply& r) {
    if (closing_) return;
    const uint64_t now = clock_.now_ns();
    const bool was = key->shared->fallen_back();
    if (r.ok && r.ints.size() == 8) {
      LeaseAnswer ans;
      ans.requests = r.ints[0];
      ans.requests_base_us = r.ints[1];
      ans.tokens = r.ints[2];
      ans.tokens_base_us = r.ints[3];
      ans.wait_us = r.ints[4];
      ans.cooldown_ms = r.ints[5];
      ans.live = r.ints[6];
      ans.anchor_ns = redis_clock_.map(sent_at, now, r.ints[7]);
      ans.clock_error_ns = redis_clock_.error_ns(now);
      ans.rtt_ns = now - sent_at;
      int64_t cool = key->shared->answered(ans, now);
      if (cool > 0) key->gate.cool_down_until(now + uint64_t(cool) * 1000000);
    } else {
      key->shared->failed(now);
    }
    note_mode(*key, was);
    keys_.wake(*key);
    poke(*key);
  });
}

void SharedLimits::note_mode(LimitKey& k, bool was) {
  const bool now_fb = k.shared->fallen_back();
  if (now_fb == was) return;
  fallen_back_keys_ += now_fb ? 1 : -1;
  if (now_fb) {
    std::fprintf(stderr,
                 "barrage: shared limits: Redis unavailable (%s); key '%s' now takes 1/%lld of its limit locally\n",
                 link_.last_error().c_str(), k.name.c_str(), static_cast<long long>(k.shared->live()));
  } else {
    std::fprintf(stderr, "barrage: shared limits: Redis is back; key '%s' shares its limit again\n", k.name.c_str());
  }
}

}  // namespace barrage
