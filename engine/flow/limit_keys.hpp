// Rate-limit keys: each key's gate (buckets, cooldown, breaker), the
// requests waiting for it in FIFO order, and the one timer that wakes them
// when the gate can next open. A granted or rejected waiter is handed to the
// KeyClient, which only records it: nothing here starts a request.
// Waiters hold no in-flight slot: a key grants only while the client has a
// slot free, and a key whose gate is open but found none is "starved" until
// offer_slots() (FIFO over keys, so no key is skipped for another).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "flow/rate_gate.hpp"
#include "flow/shared_quota.hpp"
#include "loop/clock.hpp"
#include "loop/counter.hpp"
#include "loop/intrusive_list.hpp"
#include "loop/timer_wheel.hpp"

namespace barrage {

class LimitKeys;

// A request as a key sees it; embedded in the caller's request.
struct KeyWaiter {
  ListHook<KeyWaiter> key_hook;
  int64_t tokens = 0;  // LLM tokens charged to the key's bucket per attempt
  bool probe = false;  // this attempt is its key's half-open breaker probe
};

struct LimitKey {
  LimitKey(LimitKeys& owner, std::string name, const FlowLimits& limits, uint64_t now_ns)
      : owner(owner), name(std::move(name)), gate(limits, now_ns) {}
  LimitKeys& owner;
  std::string name;
  RateGate gate;
  IntrusiveList<KeyWaiter> waiting;
  Timer timer;
  ListHook<LimitKey> starved_hook;  // in LimitKeys' starved list
  bool cooling = false;  // counted in FlowCounters::cooling_keys
  bool breaker = false;  // counted in FlowCounters::breaker_open_keys
  // With shared limits: the key's buckets live in Redis (the gate keeps only
  // cooldown and breaker), and this timer runs the next round trip.
  std::unique_ptr<SharedQuota> shared;
  Timer ask_timer;
  bool fallen_back = false;  // counted in FlowCounters::shared_fallback_keys
};

// Runs the round trips of keys whose limits are shared (flow/shared_limits).
class SharedAsker {
 public:
  // The key's state changed (a take, a waiter, a refund, a cooldown): ask
  // Redis now if the quota says so, else arm the key's ask_timer.
  virtual void poke(LimitKey& k) noexcept = 0;
  virtual void forget(LimitKey& k) noexcept = 0;  // the key goes away
  virtual const SharedTuning& tuning() const noexcept = 0;

 protected:
  ~SharedAsker() = default;
};

class KeyClient {
 public:
  // Whether one more request could start now (an in-flight slot is free).
  virtual bool slot_free() const noexcept = 0;
  // w takes the free slot before returning.
  virtual void key_granted(KeyWaiter* w) noexcept = 0;
  virtual void key_rejected(KeyWaiter* w, LimitKey& k) noexcept = 0;

 protected:
  ~KeyClient() = default;
};

struct FlowCounters {
  Counter waiting_rate, throttled, cooling_keys, breaker_open_keys, rejected;
  Counter shared_fallback_keys;  // shared keys on their local share (Redis away)
};

// What one answer says about its key.
struct AnswerFacts {
  int http_status = 0;
  int64_t retry_after_ms = -1;
  int64_t remaining_requests = -1, reset_requests_ns = -1, remaining_tokens = -1, reset_tokens_ns = -1;
};

class LimitKeys {
 public:
  LimitKeys(const FlowLimits& limits, TimerWheel& wheel, const Clock& clock) noexcept
      : limits_(limits), wheel_(wheel), clock_(clock) {}
  // Who hears of waiters granted or rejected by a key's timer; before the first admit().
  void bind(KeyClient& client) noexcept { client_ = &client; }
  // Shared limits: every key made from now on keeps its buckets in Redis.
  void bind_shared(SharedAsker& asker) noexcept { shared_ = &asker; }
  // A shared key's round trip ended: its waiters may go now (loop thread).
  void wake(LimitKey& k) noexcept;
  SharedAsker* shared() const noexcept { return shared_; }
  ~LimitKeys();

  LimitKey* key(const std::string& name, uint64_t now_ns) noexcept;  // nullptr when out of memory

  enum class Admit { go, wait, reject };
  // Every attempt passes its key's gate; requests already waiting go first.
  // go: w->probe says whether it is the breaker's probe. wait: w is queued
  // (and should give up any slot it holds).
  Admit admit(LimitKey& k, KeyWaiter& w, uint64_t now_ns) noexcept;
  void withdraw(LimitKey& k, KeyWaiter& w) noexcept;
  // Slots came free: starved keys grant, oldest starved first, while the
  // client still has a slot free.
  void offer_slots() noexcept;

  // Breaker bookkeeping for one attempt: +1 the key works, -1 it failed,
  // 0 no evidence either way (throttled, cancelled, cut short).
  void report(LimitKey& k, KeyWaiter& w, int verdict, uint64_t now_ns) noexcept;
  // An answer's rate-limit headers and, for 429/503, the cooldown it asks
  // (or `fallback_pause_ms` when it names none).
  void observe(LimitKey& k, KeyWaiter& w, const AnswerFacts& a, int64_t fallback_pause_ms, uint64_t now_ns) noexcept;
  // Tokens that were never spent (the attempt did not reach the server).
  void credit(LimitKey& k, int64_t tokens, uint64_t now_ns) noexcept;
  // An estimate against what the answer's usage says (-1: unknown).
  void settle(LimitKey& k, int64_t estimated, int64_t actual, uint64_t now_ns) noexcept;

  const FlowCounters& counters() const noexcept { return counters_; }
  const FlowLimits& limits() const noexcept { return limits_; }

 private:
  static void on_timer(void* ctx) noexcept;
  void pump(LimitKey& k) noexcept;
  void arm(LimitKey& k, uint64_t at_ns) noexcept;
  void refresh(LimitKey& k, uint64_t now_ns) noexcept;
  RateGate::Verdict acquire(LimitKey& k, int64_t tokens, uint64_t now_ns, uint64_t* retry_at) noexcept;

  FlowLimits limits_;
  TimerWheel& wheel_;
  KeyClient* client_ = nullptr;
  SharedAsker* shared_ = nullptr;
  const Clock& clock_;
  FlowCounters counters_;
  std::unordered_map<std::string, std::unique_ptr<LimitKey>> keys_;
  IntrusiveList<LimitKey> starved_;  // gate open, waiters, no slot was free
};

}  // namespace barrage
