// The engine: one reactor, the request lifecycle (slot -> connection ->
// exchange -> retry or result), and the queues that connect it to the
// threads that submit requests and take results.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "barrage.h"
#include "cache/response_cache.hpp"
#include "core/config.hpp"
#include "core/request.hpp"
#include "core/result.hpp"
#include "flow/rate_gate.hpp"
#include "flow/retry_policy.hpp"
#include "http/stream_event.hpp"
#include "http/usage.hpp"
#include "loop/backend.hpp"
#include "loop/counter.hpp"
#include "loop/intrusive_list.hpp"
#include "loop/mpsc_queue.hpp"
#include "pool/handshake_gate.hpp"
#include "loop/timer_wheel.hpp"
#include "net/dns_resolver.hpp"
#include "net/proxy_config.hpp"
#include "net/tls_context.hpp"
#include "pool/connection.hpp"
#include "pool/origin_pool.hpp"

namespace barrage {

// An origin is also the waiter for its own DNS answers.
struct Origin : OriginPool, DnsCallback {
  Engine* engine = nullptr;
  IntrusiveList<Request> waiting;  // have a slot, wait for a connection (or its addresses)
  uint64_t resolved_ms = 0;        // when addrs were last (re)confirmed
  bool resolving_inline = false;   // inside DnsResolver::resolve(): the caller handles the answer
  void on_resolved(std::vector<SockAddr> addrs, std::string error) noexcept override;
};

// One rate-limit key: its gate, the requests waiting for it in FIFO order,
// and the one timer that wakes them when the gate can next open.
struct LimitKey {
  Engine* engine = nullptr;
  std::string name;
  RateGate gate;
  IntrusiveList<Request> waiting;
  Timer timer;
  bool cooling = false;  // counted in cooling_keys_
  bool breaker = false;  // counted in breaker_keys_
  LimitKey(const FlowLimits& limits, uint64_t now_ns) : gate(limits, now_ns) {}
};

struct Group {
  IntrusiveList<Request> members;
  uint64_t deadline_at_ms = 0;  // 0 = none
  int64_t deadline_ms = 0;
};

class Engine final : private ConnectionEvents {
 public:
  // 0 and *out, or a brg_status with *err saying why.
  static int create(const EngineConfig& cfg, std::unique_ptr<Engine>* out, std::string* err);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Thread rules as in barrage.h.
  int submit(const brg_request* req, uint64_t* id_out, std::string* err) noexcept;
  int cancel(uint64_t id) noexcept;
  int cancel_group(uint64_t group) noexcept;
  int group_deadline(uint64_t group, int64_t deadline_ms) noexcept;
  int poll(int timeout_ms) noexcept;
  size_t take_results(brg_result** out, size_t max) noexcept;
  int start() noexcept;
  int backend_fd() const noexcept;
  int backend_timeout() const noexcept;
  int results_fd() const noexcept { return results_fd_; }
  void stats(struct brg_stats* out) const noexcept;
  BackendKind backend_kind() const noexcept { return backend_->kind(); }
  const std::string& backend_reason() const noexcept { return backend_why_; }

 private:
  struct Command : MpscNode {
    enum class Kind { cancel, cancel_group, group_deadline } kind = Kind::cancel;
    uint64_t id = 0;  // request or group
    int64_t deadline_ms = 0;
  };

  Engine() = default;

  // Reactor turn and its parts.
  int run_turn(int64_t timeout_ns) noexcept;
  void drain_inputs() noexcept;
  void accept(Request* r) noexcept;
  void cancel_now(uint64_t id) noexcept;
  void run_command(const Command& c) noexcept;
  int push_command(Command::Kind kind, uint64_t id, int64_t deadline_ms) noexcept;
  int cancel_group_now(uint64_t group) noexcept;
  void group_deadline_now(uint64_t group, int64_t deadline_ms) noexcept;
  Group* group_for(uint64_t id) noexcept;
  void leave_group(Request* r) noexcept;
  void apply_deadline(Request* r) noexcept;
  void advance_timers() noexcept;
  void free_dead() noexcept;
  void publish_results() noexcept;
  void push_result(ResultHolder* h) noexcept;
  bool answer_from_cache(const Request& r) noexcept;
  void thread_main() noexcept;

  // Request lifecycle.
  void grant_or_queue(Request* r) noexcept;
  void pump_queue() noexcept;
  void admit(Request* r) noexcept;
  void pump_key(LimitKey* k) noexcept;
  void arm_key(LimitKey* k, uint64_t at_ns) noexcept;
  void report(Request* r, int verdict, uint64_t now_ns) noexcept;
  void credit(LimitKey* k, int64_t tokens, uint64_t now_ns) noexcept;
  void settle(LimitKey* k, int64_t estimated, int64_t actual, uint64_t now_ns) noexcept;
  void refresh_key_stats(LimitKey* k, uint64_t now_ns) noexcept;
  LimitKey* key_for(const std::string& name) noexcept;
  static void on_key_timer(void* ctx) noexcept;
  void start_attempt(Request* r) noexcept;
  void dispatch(Request* r) noexcept;
  bool may_open(const Origin* o, size_t waiting) const noexcept;
  void open_connection(Origin* o, Request* r, size_t addr_index) noexcept;
  void assign(Connection* c, Request* r) noexcept;
  void fail_attempt(Request* r, int status, std::string message, int http_status = 0,
                    std::string body = {}, int64_t retry_after = -1) noexcept;
  void finish(Request* r, int status, int http_status, std::string error, std::string body,
              int64_t prompt_tokens = -1, int64_t completion_tokens = -1) noexcept;
  void detach(Request* r, bool close_connection) noexcept;
  static void on_attempt_timer(void* ctx) noexcept;
  static void on_deadline_timer(void* ctx) noexcept;
  void cancel_timers(Request* r) noexcept;

  // Streamed answers (BRG_REQ_STREAM).
  bool deliver_event(Request* r, int http_status, std::string_view data, uint64_t now_ns) noexcept;
  void stream_timed_out(Request* r, const char* what, int64_t ms) noexcept;
  static void on_first_token_timer(void* ctx) noexcept;
  static void on_stream_idle_timer(void* ctx) noexcept;

  // A complete answer, whichever protocol carried it.
  struct Answer {
    int status = 0;
    std::string body;
    int64_t retry_after = -1;
    std::string request_id;
    int64_t remaining_requests = -1, reset_requests_ns = -1, remaining_tokens = -1, reset_tokens_ns = -1;
  };
  template <class Response>
  static Answer take_answer(Response& resp) noexcept;
  void answered(Request* r, Answer a) noexcept;

  // Connections.
  Origin* origin_for(const http::Url& url) noexcept;
  void connection_available(Connection* c) noexcept;
  void close_connection(Connection* c, bool abort) noexcept;
  void retire(Connection* c) noexcept;
  void serve_waiting(Origin* o) noexcept;
  enum class Addresses { ready, pending, failed };
  Addresses addresses(Origin* o) noexcept;
  void resolved(Origin* o) noexcept;
  friend struct Origin;
  void stream_slot_freed(Connection* c) noexcept;
  static void on_connection_timer(void* ctx) noexcept;

  // ConnectionEvents.
  void on_ready(Connection& c) noexcept override;
  void on_first_byte(Connection& c) noexcept override;
  void on_body(Connection& c) noexcept override;
  void on_response(Connection& c) noexcept override;
  void on_failure(Connection& c, int status, std::string message) noexcept override;
  void on_stream_first_byte(Connection& c, void* user) noexcept override;
  void on_stream_data(Connection& c, void* user, http::H2Response& r, std::string_view piece) noexcept override;
  void on_stream_response(Connection& c, void* user, http::H2Response& r) noexcept override;
  void on_stream_failure(Connection& c, void* user, int status, std::string message,
                         bool unprocessed) noexcept override;
  void feed_stream(Request* r, int http_status, std::string_view content_type, std::string_view piece,
                   const SockAddr& from) noexcept;

  uint64_t now_ms() const noexcept;
  uint64_t expiry_after(int64_t ms) const noexcept;

  EngineConfig cfg_;
  std::unique_ptr<Backend> backend_;
  std::string backend_why_;
  std::unique_ptr<TlsContext> tls_;
  std::unique_ptr<ResponseCache> cache_;  // nullptr: no BRG_OPT_CACHE_PATH
  std::unique_ptr<TimerWheel> wheel_;
  std::unique_ptr<HandshakeGate> handshakes_;
  std::unique_ptr<DnsResolver> dns_;
  ConnectionEnv conn_env_;
  ProxyConfig proxy_;
  std::string scratch_;
  http::UsageReader usage_reader_;
  http::StreamEventReader stream_events_;
  RetryPolicy retry_;
  StatusSet retry_statuses_;
  FlowLimits flow_limits_;
  std::unordered_map<std::string, std::unique_ptr<LimitKey>> keys_;
  std::unordered_map<uint64_t, std::unique_ptr<Group>> groups_;
  Random random_{0};

  std::unordered_map<uint64_t, Request*> requests_;
  std::unordered_map<std::string, std::unique_ptr<Origin>> origins_;
  IntrusiveList<Request> queued_;
  std::unordered_set<Connection*> live_;  // open or opening; owned here
  std::vector<Connection*> dead_;         // closed this turn, freed at its end
  int64_t inflight_ = 0;
  bool pumping_ = false;
  bool pump_again_ = false;

  // Cross-thread hand-off.
  MpscQueue submissions_;
  MpscQueue commands_;
  MpscQueue results_;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<int64_t> pending_{0};
  std::atomic<bool> threaded_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> sleeping_{false};
  bool results_added_ = false;
  int results_fd_ = -1;
  std::thread thread_;

  // Statistics (written by the reactor thread).
  Counter submitted_, completed_, failed_, cancelled_, retried_, timed_out_;
  Counter queued_count_, inflight_count_;
  Counter conns_open_, conns_idle_, conns_opened_, tls_resumed_;
  Counter bytes_sent_, bytes_received_;
  Counter waiting_rate_, throttled_, cooling_keys_, breaker_keys_, rejected_;
  Counter prompt_tokens_, completion_tokens_;
  std::atomic<uint64_t> results_waiting_{0};
  std::atomic<uint64_t> cache_hits_{0};  // produced on submitting threads
};

}  // namespace barrage
