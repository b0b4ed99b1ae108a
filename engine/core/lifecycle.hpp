// The one owner of request state. A request moves: slot (or the slot queue)
// -> its limit key's gate -> a channel of its origin -> the exchange ->
// outcome, or a retry decision that sends it back a step. Events (channel,
// pool, key, timers) only record what happened and put the request on the
// ready queue or finish it; step() alone moves a request forward, and
// run_ready() drains the queue once per phase of the loop, so no event
// handler starts other work and nothing recurses.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "cache/response_cache.hpp"
#include "core/groups.hpp"
#include "core/request.hpp"
#include "core/results.hpp"
#include "core/stream_delivery.hpp"
#include "flow/limit_keys.hpp"
#include "flow/retry_decision.hpp"
#include "http/usage.hpp"
#include "loop/clock.hpp"
#include "loop/counter.hpp"
#include "pool/channel.hpp"
#include "pool/connection_pool.hpp"

namespace barrage {

struct LifecycleSettings {
  int64_t max_inflight = 256;
  // Longest wait a server's answer can impose (Retry-After, x-ratelimit-reset-*).
  int64_t max_server_wait_ms = 60000;
  RetryPolicy retry;
  StatusSet retry_statuses;
};

struct LifecycleCounters {
  Counter submitted, completed, failed, cancelled, retried, timed_out;
  Counter queued, in_flight;
  Counter prompt_tokens, completion_tokens;
};

class Lifecycle final : public PoolClient, public ExchangeSink, public KeyClient {
 public:
  Lifecycle(const LifecycleSettings& settings, TimerWheel& wheel, const Clock& clock, ChannelSource& pool,
            LimitKeys& keys, Results& results, ResponseCache* cache, uint64_t seed) noexcept;
  ~Lifecycle();  // frees every request; no outcome is made
  Lifecycle(const Lifecycle&) = delete;
  Lifecycle& operator=(const Lifecycle&) = delete;

  // A submitted request enters (reactor thread); it moves at run_ready().
  void accept(Request* r) noexcept;
  bool cancel(uint64_t id) noexcept;  // false: no such request (finished already)
  int cancel_group(uint64_t group) noexcept;
  void group_deadline(uint64_t group, int64_t deadline_ms) noexcept;
  // Steps every ready request and lets the pool do its queued work, until
  // neither has anything left or the budget is spent (has_ready() then
  // says so). Not re-entrant (a nested call returns).
  void run_ready(const TimeBudget& budget) noexcept;
  void run_ready() noexcept { run_ready(TimeBudget::unlimited()); }
  bool has_ready() const noexcept { return !ready_.empty() || pool_.has_work(); }

  const LifecycleCounters& counters() const noexcept { return counters_; }
  size_t live() const noexcept { return requests_.size(); }

 private:
  // Transitions.
  void step(Request* r) noexcept;
  void make_ready(Request* r, Request::State next) noexcept;
  void take_slot(Request* r) noexcept;
  void release_slot(Request* r) noexcept;  // and hands it on: starved keys first, then the queue
  void admit(Request* r) noexcept;
  void dispatch(Request* r) noexcept;
  void start_attempt(Request* r) noexcept;
  void start_exchange(Request* r, Channel* c) noexcept;
  void answered(Request* r, http::Response& resp) noexcept;
  // reported_http: the status line that arrived, for the outcome.
  void fail_attempt(Request* r, const FailureFacts& f, int reported_http, std::string message,
                    std::string body = {}) noexcept;
  void finish(Request* r, int status, int http_status, std::string error, std::string body,
              int64_t prompt_tokens = -1, int64_t completion_tokens = -1) noexcept;
  void detach(Request* r) noexcept;
  void cancel_timers(Request* r) noexcept;
  void timed_out(Request* r, std::string message) noexcept;

  // PoolClient
  void channel_ready(PoolWaiter* w, Channel* c) noexcept override;
  void waiter_failed(PoolWaiter* w, ExchangeFailure f) noexcept override;
  // ExchangeSink
  void on_first_byte(void* user) noexcept override;
  bool on_body(void* user, const http::Response& r, std::string_view piece) noexcept override;
  void on_complete(void* user, http::Response& r) noexcept override;
  void on_failure(void* user, ExchangeFailure f) noexcept override;
  // KeyClient
  bool slot_free() const noexcept override { return inflight_ < settings_.max_inflight; }
  void key_granted(KeyWaiter* w) noexcept override;
  void key_rejected(KeyWaiter* w, LimitKey& k) noexcept override;
  // Timers.
  static void on_attempt_timer(void* ctx) noexcept;
  static void on_deadline_timer(void* ctx) noexcept;
  static void on_first_token_timer(void* ctx) noexcept;
  static void on_stream_idle_timer(void* ctx) noexcept;

  LifecycleSettings settings_;
  TimerWheel& wheel_;
  const Clock& clock_;
  ChannelSource& pool_;
  LimitKeys& keys_;
  Results& results_;
  ResponseCache* cache_;
  Groups groups_;
  StreamDelivery stream_;
  http::UsageReader usage_reader_;
  Random random_;
  LifecycleCounters counters_;
  std::unordered_map<uint64_t, Request*> requests_;
  IntrusiveList<Request> queued_;  // waiting for an in-flight slot
  IntrusiveList<Request> ready_;   // to step
  int64_t inflight_ = 0;
  bool running_ = false;
};

}  // namespace barrage
