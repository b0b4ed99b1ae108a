// The engine: assembly, the submit path, and the reactor turn in fixed
// phases (as uv_run does): inputs, due timers, ready requests, I/O wait,
// due timers, ready requests, results. Request state lives in Lifecycle.
#include "core/engine.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <optional>

#include "barrage.h"
#include "barrage_build_config.h"
#include "flow/token_estimate.hpp"
#if BRG_HAVE_HIREDIS
#include "flow/shared_limits.hpp"
#include "flow/shared_quota_lua.h"
#endif

namespace barrage {

namespace {

// One SSE event's data is bounded by this (and every answer by max_response_bytes).
constexpr size_t kMaxEventBytes = size_t(16) << 20;
// How long each working phase of a turn (requests moving, I/O dispatch) may
// go on before the timers run. Short enough that a deadline ends its
// request within a few ms of passing however much work arrives at once (one
// ticket releasing 450 handshakes held a turn for 115 ms, 500 handshakes
// completing ~30 ms), long enough that a turn's fixed cost (one
// io_uring_enter, the timers, publishing) stays small beside it.
constexpr int64_t kPhaseBudgetNs = 1'000'000;
// The request's value, else the engine's; 0 when that means none.
int64_t effective_timeout(int64_t asked, int64_t engine) noexcept {
  int64_t v = asked != 0 ? asked : engine;
  return v >= Clock::kForeverMs ? 0 : v;
}

// Raise the soft descriptor limit to the hard one: thousands of connections
// are the point of the engine, and the default soft limit is often 1024.
void raise_nofile_limit() noexcept {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace

int Engine::create(const EngineConfig& cfg, OutcomeStore& store, std::unique_ptr<Engine>* out, std::string* err) {
  std::unique_ptr<Engine> e(new (std::nothrow) Engine);
  if (!e) return BRG_E_NOMEM;
  e->cfg_ = cfg;
  raise_nofile_limit();

  BackendChoice choice = make_backend(static_cast<BackendKind>(cfg.backend));
  if (!choice.backend) {
    *err = choice.why;
    return BRG_E_BACKEND;
  }
  e->backend_ = std::move(choice.backend);
  e->backend_why_ = std::move(choice.why);

  TlsOptions tls;
  tls.verify_peer = cfg.verify_peer != 0;
  tls.ca_file = cfg.ca_file;
  tls.resume = cfg.tls_resume != 0;
  tls.http_version = int(cfg.http_version);
  e->tls_ = TlsContext::create(tls, err);
  if (!e->tls_) return BRG_E_TLS;
  std::string proxy_why = ProxyConfig::parse(cfg.proxy, cfg.no_proxy, &e->proxy_);
  if (!proxy_why.empty()) {
    *err = proxy_why;
    return BRG_E_INVALID;
  }
  if (!cfg.cache_path.empty()) {
    e->cache_ = ResponseCache::open(cfg.cache_path, cfg.cache_ttl_s, err);
    if (!e->cache_) {
      *err = "cannot open the response cache '" + cfg.cache_path + "': " + *err;
      return BRG_E_INVALID;
    }
  }
  e->mailbox_ = Mailbox::create(*e->backend_, err);
  if (!e->mailbox_) return BRG_E_BACKEND;
  e->mailbox_->set_store(&store);
  e->wheel_ = std::make_unique<TimerWheel>(e->clock_.now_ms());
  DnsOptions dns;
  dns.servers = cfg.dns_servers;
  e->dns_ = DnsResolver::create(*e->backend_, *e->wheel_, dns, err);
  if (!e->dns_) {
    *err = "DNS resolver: " + *err;
    return cfg.dns_servers.empty() ? BRG_E_DNS : BRG_E_INVALID;
  }
  LifecycleSettings ls;
  ls.max_inflight = cfg.max_inflight;
  ls.max_server_wait_ms = std::min(cfg.max_server_wait_ms, Clock::kForeverMs);
  ls.retry = RetryPolicy{cfg.backoff_base_ms, cfg.backoff_max_ms};
  if (!cfg.retry_statuses.empty()) {
    std::string why = ls.retry_statuses.parse(cfg.retry_statuses);
    if (!why.empty()) {
      *err = "BRG_OPT_RETRY_STATUSES: " + why;
      return BRG_E_INVALID;
    }
  }
  FlowLimits fl;
  fl.requests_per_period = cfg.rate_limit;
  fl.period_ms = cfg.rate_period_ms;
  fl.request_burst = cfg.rate_burst;
  fl.tokens_per_minute = cfg.tokens_per_minute;
  fl.token_burst = cfg.tokens_burst;
  fl.breaker_threshold = cfg.breaker_threshold;
  fl.breaker_pause_ms = cfg.breaker_pause_ms;

  e->handshakes_ = std::make_unique<HandshakeGate>(size_t(cfg.max_handshakes));
  TransportEnv env;
  env.backend = e->backend_.get();
  env.tls = e->tls_.get();
  env.handshakes = e->handshakes_.get();
  env.proxy = &e->proxy_;
  env.scratch = &e->scratch_;
  env.bytes_sent = &e->bytes_sent_;
  env.bytes_received = &e->bytes_received_;
  PoolSettings ps;
  ps.max_conns_per_host = cfg.max_conns_per_host;
  ps.connect_timeout_ms = cfg.connect_timeout_ms;
  ps.idle_timeout_ms = cfg.idle_timeout_ms;
  ps.http_version = int(cfg.http_version);
  ps.limits.max_body_bytes = size_t(cfg.max_response_bytes);
  ps.limits.max_header_bytes = size_t(cfg.max_header_bytes);

  e->results_ = std::make_unique<Results>(*e->mailbox_, store);
  e->pool_ = std::make_unique<ConnectionPool>(ps, env, *e->wheel_, *e->dns_, e->proxy_, e->clock_);
  e->keys_ = std::make_unique<LimitKeys>(fl, *e->wheel_, e->clock_);
  if (int rc = e->share_limits(cfg, err); rc != 0) return rc;
  uint64_t seed = e->clock_.now_ns() ^ reinterpret_cast<uintptr_t>(e.get());
  e->lifecycle_ = std::make_unique<Lifecycle>(ls, *e->wheel_, e->clock_, *e->pool_, *e->keys_, *e->results_,
                                              e->cache_.get(), seed);
  e->pool_->bind(*e->lifecycle_);
  e->keys_->bind(*e->lifecycle_);
  *out = std::move(e);
  return 0;
}

// BRG_OPT_SHARED_LIMITS: checked here, once, on the creating thread (a bad
// URL, password or a server that is not Redis fail the engine; Redis away
// does not: the keys start on their local share and rejoin when it answers).
int Engine::share_limits(const EngineConfig& cfg, std::string* err) {
  if (cfg.shared_limits.empty()) return 0;
#if BRG_HAVE_HIREDIS
  SharedSettings s;
  std::string why = parse_redis_url(cfg.shared_limits, &s.endpoint);
  if (!why.empty()) {
    *err = "BRG_OPT_SHARED_LIMITS: " + why;
    return BRG_E_INVALID;
  }
  RedisProbe probe = probe_redis(&s.endpoint, cfg.shared_timeout_ms, kSharedQuotaLua);
  if (!probe.error.empty()) {
    *err = "BRG_OPT_SHARED_LIMITS: " + probe.error;
    return BRG_E_INVALID;
  }
  if (!probe.reachable) {
    std::fprintf(stderr, "barrage: shared limits: Redis at %s:%u does not answer yet; keys use their local share "
                 "until it does\n", s.endpoint.host.c_str(), unsigned(s.endpoint.port));
  }
  s.script_sha = probe.script_sha;
  s.name_space = cfg.shared_namespace.empty() ? "barrage" : cfg.shared_namespace;
  s.timeout_ms = cfg.shared_timeout_ms;
  s.tuning.horizon_ns = uint64_t(cfg.shared_lease_ms) * 1000000;
  s.tuning.timeout_ns = uint64_t(cfg.shared_timeout_ms) * 1000000;
  try {
    shared_ = std::make_shared<SharedLimits>(s, *backend_, *wheel_, clock_, *keys_);
  } catch (...) {
    return BRG_E_NOMEM;
  }
  keys_->bind_shared(*shared_);
  return 0;
#else
  *err = "BRG_OPT_SHARED_LIMITS: this libbarrage was built without hiredis (meson -Dshared_limits=enabled)";
  return BRG_E_INVALID;
#endif
}

Engine::~Engine() {
  if (mailbox_) mailbox_->stop();
  if (thread_.joinable()) thread_.join();  // the thread said goodbye on its way out
  if (handshakes_) handshakes_->stop();  // closing a connection must not start a queued handshake
  if (pool_ && backend_ && !goodbye_said_) say_goodbye();  // inline mode: this is the owner thread
  // What closing reports still finds its requests.
  if (pool_) pool_->shutdown();
  lifecycle_.reset();  // the requests, before the pool and keys whose lists hold them
}

// ---- caller's thread --------------------------------------------------------

int Engine::submit(const RequestSpec& in, uint64_t* id_out, std::string* err) noexcept {
  try {
    if (mailbox_->stopping()) return *err = "engine is shutting down", BRG_E_CLOSED;
    if (in.timeout_ms < 0) return *err = "timeout_ms is negative", BRG_E_INVALID;
    if (in.deadline_ms < 0) return *err = "deadline_ms is negative", BRG_E_INVALID;
    if (in.max_retries < -1) return *err = "max_retries must be -1 (default) or >= 0", BRG_E_INVALID;
    if (in.first_token_timeout_ms < 0 || in.stream_idle_timeout_ms < 0)
      return *err = "first_token_timeout_ms and stream_idle_timeout_ms must be >= 0 (BRG_NO_TIMEOUT: none)",
             BRG_E_INVALID;

    auto r = std::make_unique<Request>();
    std::string why = http::parse_url(in.url, cfg_.allow_http != 0, r->url);
    if (!why.empty()) return *err = "bad url: " + why, BRG_E_INVALID;
    why = r->head.build(in.method, r->url, in.headers, in.n_headers, in.body, BRG_VERSION_STRING);
    if (!why.empty()) return *err = why, BRG_E_INVALID;
    if (!mailbox_->reserve_pending(cfg_.max_pending))
      return *err = "too many pending requests (BRG_OPT_MAX_PENDING = " + std::to_string(cfg_.max_pending) + ")",
             BRG_E_FULL;
    // From here a failure (out of memory) must give the place back: a
    // refused submit changes nothing.
    struct PendingGuard {
      Mailbox* m;
      ~PendingGuard() {
        if (m) m->release_pending();
      }
    } guard{mailbox_.get()};

    r->id = mailbox_->next_id();
    r->user_data = in.user_data;
    r->timeout_ms = effective_timeout(in.timeout_ms, cfg_.timeout_ms);
    r->deadline_ms = in.deadline_ms < Clock::kForeverMs ? in.deadline_ms : 0;
    r->max_retries = uint32_t(in.no_retry ? 0 : in.max_retries >= 0 ? in.max_retries : cfg_.max_retries);
    r->limit_key.assign(in.limit_key);
    r->keep_headers = in.keep_headers;
    r->group_id = in.group;
    if (in.stream) {
      r->stream = std::make_unique<StreamState>(std::min<size_t>(kMaxEventBytes, size_t(cfg_.max_response_bytes)));
      r->stream->first_token_timeout_ms = effective_timeout(in.first_token_timeout_ms, cfg_.first_token_timeout_ms);
      r->stream->idle_timeout_ms = effective_timeout(in.stream_idle_timeout_ms, cfg_.stream_idle_timeout_ms);
      r->stream->keep_body = in.keep_stream_body;
    }
    // The estimate matters only to a tokens-per-minute bucket: skip the JSON parse otherwise.
    if (cfg_.tokens_per_minute > 0) r->tokens = in.token_estimate ? int64_t(in.token_estimate) : estimate_tokens(in.body);
    r->submit_ns = clock_.now_ns();
    if (r->deadline_ms > 0)
      r->own_deadline_at_ms = r->deadline_at_ms = (r->submit_ns + uint64_t(r->deadline_ms) * 1000000 + 999999) / 1000000;
    if (id_out) *id_out = r->id;
    // A cached answer has no events to replay: streams always go to the network.
    if (cache_ && !in.no_cache && !in.stream) {
      // A point read on the submitting thread: in threaded mode never the
      // reactor; inline, the owner thread, which DESIGN.md accepts for a
      // page-cache-hot SQLite lookup. Writes go to the cache's own thread.
      r->cache_key = ResponseCache::key(in.method, r->url.origin() + r->url.target, in.body);
      if (answer_from_cache(*r)) return guard.m = nullptr, 0;
    }
    guard.m = nullptr;
    mailbox_->submit(r.release());
    return 0;
  } catch (const std::bad_alloc&) {
    return *err = "out of memory", BRG_E_NOMEM;
  } catch (...) {
    return *err = "internal error", BRG_E_INVALID;
  }
}

bool Engine::answer_from_cache(const Request& r) noexcept {
  std::optional<CachedAnswer> hit = cache_->lookup(r.cache_key);
  if (!hit) return false;
  Outcome* o = results_->stamped(r, clock_.now_ns());
  if (!o) return false;  // serve it from the network instead
  o->kind = Outcome::cached;
  o->status = BRG_OK;
  o->http_status = hit->http_status;
  o->queued_us = 0;
  o->prompt_tokens = hit->prompt_tokens;
  o->completion_tokens = hit->completion_tokens;
  o->body = std::move(hit->body);
  mailbox_->count_cache_hit();
  mailbox_->deliver_now(o);
  return true;
}

int Engine::cancel(uint64_t id) noexcept {
  if (!mailbox_->issued(id)) return BRG_E_NOTFOUND;
  if (mailbox_->threaded()) return mailbox_->command(Command::Kind::cancel, id, 0);
  drain_inputs();
  if (!lifecycle_->cancel(id)) return BRG_E_NOTFOUND;
  settle_inline();
  return 0;
}

int Engine::cancel_group(uint64_t group) noexcept {
  if (mailbox_->threaded()) return mailbox_->command(Command::Kind::cancel_group, group, 0);
  drain_inputs();
  int n = lifecycle_->cancel_group(group);
  settle_inline();
  return n;
}

int Engine::group_deadline(uint64_t group, int64_t deadline_ms) noexcept {
  if (mailbox_->threaded()) return mailbox_->command(Command::Kind::group_deadline, group, deadline_ms);
  drain_inputs();
  lifecycle_->group_deadline(group, deadline_ms);
  advance_timers();  // a deadline already past ends its members in this call
  settle_inline();
  return 0;
}

void Engine::settle_inline() noexcept {
  lifecycle_->run_ready();
  backend_->submit();  // a cancel's reset reaches the socket now, not at the next poll
  // A reset queued behind a send still in flight (one per socket) goes once
  // that send completes: take completions without blocking, then send it.
  if (pool_->output_pending()) {
    backend_->wait(0);
    lifecycle_->run_ready();
    backend_->submit();
  }
  pool_->free_closed();
  mailbox_->publish();
}

void Engine::say_goodbye() noexcept {
  goodbye_said_ = true;
  pool_->say_goodbye();
  const uint64_t until = clock_.now_ns() + 50 * 1000000ull;
  while (pool_->output_pending() && clock_.now_ns() < until) {
    backend_->wait(1000000);
    lifecycle_->run_ready();
  }
}

int Engine::start() noexcept {
  if (mailbox_->threaded()) return BRG_E_INVALID;
  mailbox_->set_threaded(true);
  try {
    thread_ = std::thread([this] { thread_main(); });
  } catch (...) {
    mailbox_->set_threaded(false);
    return BRG_E_BACKEND;
  }
  return 0;
}

int Engine::backend_fd() const noexcept { return mailbox_->threaded() ? -1 : backend_->poll_fd(); }

int Engine::backend_timeout() const noexcept {
  if (mailbox_->inputs_pending() || backend_->has_pending() || lifecycle_->has_ready()) return 0;
  return int(wheel_->timeout_ms(clock_.now_ms()));
}

int Engine::poll(int timeout_ms) noexcept {
  if (mailbox_->threaded()) return BRG_E_INVALID;
  int64_t ns = timeout_ms < 0 ? -1 : int64_t(timeout_ms) * 1000000;
  if (mailbox_->waiting() > 0) ns = 0;
  int rc = run_turn(ns);
  if (rc < 0) return rc;
  return int(std::min<uint64_t>(mailbox_->waiting(), INT32_MAX));
}

// ---- the reactor turn ---------------------------------------------------------

int Engine::run_turn(int64_t timeout_ns) noexcept {
  drain_inputs();           // 1. new requests and commands
  advance_timers();         // 2. deadlines due
  lifecycle_->run_ready(TimeBudget(kPhaseBudgetNs));  // 3. requests move; the pool writes
  pool_->free_closed(TimeBudget(kPhaseBudgetNs));      //    a cancel's connection goes before the wait, not after
  uint64_t next = wheel_->next_wake();
  if (next != UINT64_MAX) {
    uint64_t now = clock_.now_ns();
    int64_t until = next * 1000000 > now ? int64_t(next * 1000000 - now) : 0;
    if (timeout_ns < 0 || until < timeout_ns) timeout_ns = until;
  }
  const bool work_left = mailbox_->unpublished() || lifecycle_->has_ready();
  if (work_left) timeout_ns = 0;
  bool threaded = mailbox_->threaded();
  if (threaded && !mailbox_->going_to_sleep()) timeout_ns = 0;
  // The one step that cannot be cut short (malloc_trim after a handshake
  // burst, 2.5-10 ms measured) waits until no request is left whose
  // deadline or answer it could delay: idle connections are what it is for.
  if (pool_->heap_to_give_back() && !work_left && lifecycle_->live() == 0) pool_->give_back_heap();
  int rc = backend_->wait(timeout_ns, kPhaseBudgetNs);  // 4. I/O
  if (threaded) mailbox_->woke();
  advance_timers();                     // 5. deadlines due
  lifecycle_->run_ready(TimeBudget(kPhaseBudgetNs));  // 6. requests move
  // Inline, the next wait is at the caller's next poll, whenever that is:
  // what this turn wrote (a deadline's reset, new requests) goes now.
  // Threaded, the next wait follows at once and submits it.
  if (!threaded) backend_->submit();
  pool_->free_closed(TimeBudget(kPhaseBudgetNs));
  mailbox_->publish();                  // 7. results
  return rc < 0 ? BRG_E_BACKEND : 0;
}

void Engine::drain_inputs() noexcept {
  while (Request* r = mailbox_->pop_submission()) lifecycle_->accept(r);
  while (Command* c = mailbox_->pop_command()) {
    run_command(*c);
    delete c;
  }
}

void Engine::run_command(const Command& c) noexcept {
  switch (c.kind) {
    case Command::Kind::cancel: lifecycle_->cancel(c.id); break;
    case Command::Kind::cancel_group: lifecycle_->cancel_group(c.id); break;
    case Command::Kind::group_deadline:
      lifecycle_->group_deadline(c.id, c.deadline_ms);
      advance_timers();
      break;
  }
}

void Engine::advance_timers() noexcept { wheel_->advance(clock_.now_ms()); }

void Engine::thread_main() noexcept {
  while (!mailbox_->stopping()) {
    if (run_turn(-1) < 0) break;
  }
  say_goodbye();  // here: an io_uring ring answers only the thread that drives it
}

EngineStats Engine::stats() const noexcept {
  EngineStats s;
  const LifecycleCounters& l = lifecycle_->counters();
  const PoolCounters& p = pool_->counters();
  const FlowCounters& f = keys_->counters();
  uint64_t hits = mailbox_->cache_hits();
  s.backend = int32_t(backend_->kind());
  s.submitted = l.submitted.get() + hits;
  s.completed = l.completed.get() + hits;
  s.failed = l.failed.get();
  s.cancelled = l.cancelled.get();
  s.retried = l.retried.get();
  s.timed_out = l.timed_out.get();
  s.queued = l.queued.get();
  s.in_flight = l.in_flight.get();
  s.connections_open = p.open.get();
  s.connections_idle = p.idle.get();
  s.connections_opened = p.opened.get();
  s.tls_resumed = p.tls_resumed.get();
  s.bytes_sent = bytes_sent_.get();
  s.bytes_received = bytes_received_.get();
  s.results_waiting = mailbox_->waiting();
  s.waiting_rate = f.waiting_rate.get();
  s.throttled = f.throttled.get();
  s.cooling_keys = f.cooling_keys.get();
  s.breaker_open_keys = f.breaker_open_keys.get();
  s.rejected = f.rejected.get();
  s.prompt_tokens = l.prompt_tokens.get();
  s.completion_tokens = l.completion_tokens.get();
  s.cache_hits = hits;
  s.shared_fallback_keys = f.shared_fallback_keys.get();
#if BRG_HAVE_HIREDIS
  if (shared_) s.shared_round_trips = shared_->round_trips();
#endif
  return s;
}

}  // namespace barrage
