// The engine: assembles the parts (backend, wheel, pool, limit keys,
// lifecycle, mailbox) and runs the reactor turn in fixed phases. Its entry
// points are the C ABI's, in the engine's own types; thread rules as in
// barrage.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "cache/response_cache.hpp"
#include "core/config.hpp"
#include "core/engine_stats.hpp"
#include "core/lifecycle.hpp"
#include "core/mailbox.hpp"
#include "core/outcome.hpp"
#include "core/request_spec.hpp"
#include "core/results.hpp"
#include "flow/limit_keys.hpp"
#include "loop/backend.hpp"
#include "loop/clock.hpp"
#include "loop/timer_wheel.hpp"
#include "net/dns_resolver.hpp"
#include "net/proxy_config.hpp"
#include "net/tls_context.hpp"
#include "pool/connection_pool.hpp"
#include "pool/handshake_gate.hpp"

namespace barrage {

class SharedLimits;

class Engine final {
 public:
  // 0 and *out, or a brg_status with *err saying why. store makes the
  // outcomes (the C ABI's allocates its result struct with each); it must
  // outlive the engine.
  static int create(const EngineConfig& cfg, OutcomeStore& store, std::unique_ptr<Engine>* out, std::string* err);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  int submit(const RequestSpec& spec, uint64_t* id_out, std::string* err) noexcept;
  int cancel(uint64_t id) noexcept;
  int cancel_group(uint64_t group) noexcept;
  int group_deadline(uint64_t group, int64_t deadline_ms) noexcept;
  int poll(int timeout_ms) noexcept;
  // Up to max outcomes, each handed to each(outcome, index); any thread.
  template <class F>
  size_t take_outcomes(size_t max, F&& each) noexcept {
    return mailbox_->take(max, std::forward<F>(each));
  }
  int start() noexcept;
  int backend_fd() const noexcept;
  int backend_timeout() const noexcept;
  int results_fd() const noexcept { return mailbox_->results_fd(); }
  EngineStats stats() const noexcept;
  BackendKind backend_kind() const noexcept { return backend_->kind(); }
  const std::string& backend_reason() const noexcept { return backend_why_; }

 private:
  Engine() = default;

  // The turn: inputs, timers, wait, timers, results.
  int run_turn(int64_t timeout_ns) noexcept;
  void drain_inputs() noexcept;
  void run_command(const Command& c) noexcept;
  void advance_timers() noexcept;
  // After a caller's command in inline mode: what it caused reaches the
  // sockets and the results before the call returns.
  void settle_inline() noexcept;
  // On the loop's thread, once: GOAWAY on every HTTP/2 connection, and up to
  // 50 ms of non-blocking turns so that it leaves before the sockets close.
  void say_goodbye() noexcept;
  bool goodbye_said_ = false;
  bool answer_from_cache(const Request& r) noexcept;
  void thread_main() noexcept;
  int share_limits(const EngineConfig& cfg, std::string* err);

  EngineConfig cfg_;
  Clock clock_;
  std::unique_ptr<Backend> backend_;
  std::string backend_why_;
  std::unique_ptr<TlsContext> tls_;
  std::unique_ptr<ResponseCache> cache_;  // nullptr: no BRG_OPT_CACHE_PATH
  std::unique_ptr<TimerWheel> wheel_;
  std::unique_ptr<DnsResolver> dns_;
  std::unique_ptr<HandshakeGate> handshakes_;
  ProxyConfig proxy_;
  std::string scratch_;
  Counter bytes_sent_, bytes_received_;
  std::unique_ptr<Mailbox> mailbox_;
  std::unique_ptr<Results> results_;
  // BRG_OPT_SHARED_LIMITS; a shared_ptr so that builds without hiredis
  // never need its destructor. Outlives keys_, whose keys it times.
  std::shared_ptr<SharedLimits> shared_;
  std::unique_ptr<LimitKeys> keys_;
  std::unique_ptr<ConnectionPool> pool_;
  std::unique_ptr<Lifecycle> lifecycle_;
  std::thread thread_;
};

}  // namespace barrage
