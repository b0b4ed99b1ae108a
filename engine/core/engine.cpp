// The request lifecycle on the reactor thread. A request gets an in-flight
// slot (or queues for one), then a connection of its origin (idle LIFO, a
// new one, or the origin's waiting list), is written, read, and either
// finishes or waits on its attempt timer for the next attempt. Every wait
// has a timer on the wheel; nothing polls.
#include "core/engine.hpp"

#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <cstring>

#include "barrage_build_config.h"
#include "http/ascii.hpp"
#include "http/request_writer.hpp"
#include "flow/rate_headers.hpp"
#include "flow/token_estimate.hpp"
#include "http/usage.hpp"
#include "loop/clock.hpp"

namespace barrage {

namespace {

constexpr size_t kRequestV1Size = offsetof(brg_request, token_estimate) + sizeof(uint32_t);
constexpr size_t kRequestWithGroupSize = offsetof(brg_request, group) + sizeof(uint64_t);
constexpr size_t kRequestWithStreamSize = offsetof(brg_request, stream_idle_timeout_ms) + sizeof(int64_t);
// One SSE event's data is bounded by this (and every answer by max_response_bytes).
constexpr size_t kMaxEventBytes = size_t(16) << 20;
constexpr uint32_t kKnownFlags = BRG_REQ_STREAM | BRG_REQ_NO_RETRY | BRG_REQ_NO_CACHE;

uint64_t ceil_ms(uint64_t ns) noexcept { return (ns + 999999) / 1000000; }

int64_t unix_now_ms() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
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

int64_t us_since(uint64_t from_ns, uint64_t at_ns) noexcept {
  return at_ns ? int64_t(at_ns - from_ns) / 1000 : -1;
}

// The fields every result of r carries, as of now_ns: identity, attempts,
// timings, and a stream's token timing so far. Tokens and bodies are the
// caller's.
void stamp(brg_result& pub, const Request& r, uint64_t now_ns) noexcept {
  pub = brg_result{};
  pub.size = sizeof(brg_result);
  pub.id = r.id;
  pub.user_data = r.user_data;
  pub.attempts = r.attempts;
  pub.queued_us = us_since(r.submit_ns, r.granted_ns);
  pub.ttfb_us = us_since(r.submit_ns, r.first_byte_ns);
  pub.sent_us = us_since(r.submit_ns, r.sent_ns);
  pub.total_us = int64_t(now_ns - r.submit_ns) / 1000;
  pub.prompt_tokens = pub.completion_tokens = -1;
  pub.ttft_us = pub.gap_max_us = pub.gap_mean_us = -1;
  if (const StreamState* s = r.stream.get()) {
    pub.ttft_us = us_since(r.submit_ns, s->first_token_ns);
    pub.events = s->events;
    if (s->gaps) {
      pub.gap_max_us = int64_t(s->gap_max_ns / 1000);
      pub.gap_mean_us = int64_t(s->gap_sum_ns / s->gaps / 1000);
    }
  }
}

std::string http_reason(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
  }
}

}  // namespace

int Engine::create(const EngineConfig& cfg, std::unique_ptr<Engine>* out, std::string* err) {
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

  e->results_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (e->results_fd_ < 0) {
    *err = std::string("eventfd: ") + std::strerror(errno);
    return BRG_E_BACKEND;
  }
  e->wheel_ = std::make_unique<TimerWheel>(monotonic_ms());
  DnsOptions dns;
  dns.servers = cfg.dns_servers;
  e->dns_ = DnsResolver::create(*e->backend_, *e->wheel_, dns, err);
  if (!e->dns_) {
    *err = "DNS resolver: " + *err;
    return cfg.dns_servers.empty() ? BRG_E_DNS : BRG_E_INVALID;
  }
  e->retry_ = RetryPolicy{cfg.backoff_base_ms, cfg.backoff_max_ms};
  if (!cfg.retry_statuses.empty()) {
    std::string why = e->retry_statuses_.parse(cfg.retry_statuses);
    if (!why.empty()) {
      *err = "BRG_OPT_RETRY_STATUSES: " + why;
      return BRG_E_INVALID;
    }
  }
  FlowLimits& fl = e->flow_limits_;
  fl.requests_per_period = cfg.rate_limit;
  fl.period_ms = cfg.rate_period_ms;
  fl.request_burst = cfg.rate_burst;
  fl.tokens_per_minute = cfg.tokens_per_minute;
  fl.token_burst = cfg.tokens_burst;
  fl.breaker_threshold = cfg.breaker_threshold;
  fl.breaker_pause_ms = cfg.breaker_pause_ms;
  e->random_ = Random(monotonic_ns() ^ reinterpret_cast<uintptr_t>(e.get()));

  ConnectionEnv& env = e->conn_env_;
  env.backend = e->backend_.get();
  env.tls = e->tls_.get();
  env.events = e.get();
  e->handshakes_ = std::make_unique<HandshakeGate>(size_t(cfg.max_handshakes));
  env.handshakes = e->handshakes_.get();
  env.limits.max_body_bytes = size_t(cfg.max_response_bytes);
  env.limits.max_header_bytes = size_t(cfg.max_header_bytes);
  env.http_version = int(cfg.http_version);
  env.proxy = &e->proxy_;
  env.scratch = &e->scratch_;
  env.bytes_sent = &e->bytes_sent_;
  env.bytes_received = &e->bytes_received_;
  *out = std::move(e);
  return 0;
}

Engine::~Engine() {
  stopping_.store(true, std::memory_order_seq_cst);
  if (thread_.joinable()) {
    backend_->wake();
    thread_.join();
  }
  // Requests still in the submission queue were never seen by the loop.
  while (MpscNode* n = submissions_.pop()) delete static_cast<Request*>(n);
  while (MpscNode* n = commands_.pop()) delete static_cast<Command*>(n);
  for (auto& [name, k] : keys_)
    if (k->timer.armed()) wheel_->cancel(k->timer);
  for (auto& [id, r] : requests_) {
    cancel_timers(r);
    delete r;
  }
  requests_.clear();
  for (Connection* c : dead_) delete c;
  dead_.clear();
  if (handshakes_) handshakes_->stop();  // closing a connection below must not start a queued one
  for (Connection* c : live_) {
    if (c->timer.armed()) wheel_->cancel(c->timer);
    c->close(true);
    delete c;
  }
  live_.clear();
  dns_.reset();  // its sockets and timer go before the backend and the wheel
  while (MpscNode* n = results_.pop()) delete ResultHolder::from_node(n);
  if (results_fd_ >= 0) ::close(results_fd_);
}

uint64_t Engine::now_ms() const noexcept { return monotonic_ms(); }

// Timers are rounded up to the next ms so that none fires early.
uint64_t Engine::expiry_after(int64_t ms) const noexcept {
  return ceil_ms(monotonic_ns() + uint64_t(ms) * 1000000);
}

// ---- submission (caller's thread) -------------------------------------------

int Engine::submit(const brg_request* in, uint64_t* id_out, std::string* err) noexcept {
  try {
    if (!in) return *err = "request is NULL", BRG_E_INVALID;
    if (in->size < kRequestV1Size || in->size > 65536)
      return *err = "brg_request.size is " + std::to_string(in->size) + "; set it to sizeof(brg_request)",
             BRG_E_INVALID;
    if (stopping_.load(std::memory_order_relaxed)) return *err = "engine is shutting down", BRG_E_CLOSED;
    if (in->flags & ~kKnownFlags) return *err = "unknown flag bits in brg_request.flags", BRG_E_INVALID;
    if (!in->url) return *err = "url is NULL", BRG_E_INVALID;
    if (in->n_headers > 0 && !in->headers) return *err = "headers is NULL but n_headers > 0", BRG_E_INVALID;
    if (in->n_headers > 1024) return *err = "more than 1024 headers", BRG_E_INVALID;
    if (in->body_len > 0 && !in->body) return *err = "body is NULL but body_len > 0", BRG_E_INVALID;
    if (in->timeout_ms < 0) return *err = "timeout_ms is negative", BRG_E_INVALID;
    if (in->deadline_ms < 0) return *err = "deadline_ms is negative", BRG_E_INVALID;
    if (in->max_retries < -1) return *err = "max_retries must be -1 (default) or >= 0", BRG_E_INVALID;

    auto r = std::make_unique<Request>();
    std::string why = http::parse_url(in->url, cfg_.allow_http != 0, r->url);
    if (!why.empty()) return *err = "bad url: " + why, BRG_E_INVALID;

    http::HeaderView headers_buf[16];
    std::vector<http::HeaderView> headers_vec;
    http::HeaderView* headers = headers_buf;
    if (in->n_headers > 16) {
      headers_vec.resize(in->n_headers);
      headers = headers_vec.data();
    }
    for (uint32_t i = 0; i < in->n_headers; ++i) {
      if (!in->headers[i].name || !in->headers[i].value)
        return *err = "header " + std::to_string(i) + " has a NULL name or value", BRG_E_INVALID;
      headers[i] = {in->headers[i].name, in->headers[i].value};
    }
    std::string_view method = in->method ? in->method : "POST";
    std::string_view body(static_cast<const char*>(in->body), in->body_len);
    why = http::write_request(r->wire, method, r->url, headers, in->n_headers, body, BRG_VERSION_STRING);
    if (!why.empty()) return *err = why, BRG_E_INVALID;

    int64_t pending = pending_.fetch_add(1, std::memory_order_relaxed);
    if (pending >= cfg_.max_pending) {
      pending_.fetch_sub(1, std::memory_order_relaxed);
      return *err = "too many pending requests (BRG_OPT_MAX_PENDING = " + std::to_string(cfg_.max_pending) + ")",
             BRG_E_FULL;
    }
    r->engine = this;
    r->id = next_id_.fetch_add(1, std::memory_order_relaxed);
    r->user_data = in->user_data;
    r->flags = in->flags;
    r->head = method == "HEAD";
    r->timeout_ms = in->timeout_ms > 0 ? in->timeout_ms : cfg_.timeout_ms;
    r->deadline_ms = in->deadline_ms;
    r->max_retries = in->max_retries >= 0 ? in->max_retries : int32_t(cfg_.max_retries);
    if (in->flags & BRG_REQ_NO_RETRY) r->max_retries = 0;
    if (in->size >= kRequestWithGroupSize) {
      if (in->limit_key) r->limit_key = in->limit_key;
      r->group_id = in->group;
    }
    if (in->flags & BRG_REQ_STREAM) {
      int64_t first = cfg_.first_token_timeout_ms, idle = cfg_.stream_idle_timeout_ms;
      if (in->size >= kRequestWithStreamSize) {
        if (in->first_token_timeout_ms < 0 || in->stream_idle_timeout_ms < 0)
          return *err = "first_token_timeout_ms and stream_idle_timeout_ms must be >= 0", BRG_E_INVALID;
        if (in->first_token_timeout_ms > 0) first = in->first_token_timeout_ms;
        if (in->stream_idle_timeout_ms > 0) idle = in->stream_idle_timeout_ms;
      }
      r->stream = std::make_unique<StreamState>(std::min<size_t>(kMaxEventBytes, size_t(cfg_.max_response_bytes)));
      r->stream->first_token_timeout_ms = first;
      r->stream->idle_timeout_ms = idle;
    }
    // The estimate matters only to a tokens-per-minute bucket: skip the JSON parse otherwise.
    if (cfg_.tokens_per_minute > 0)
      r->tokens = in->token_estimate ? int64_t(in->token_estimate) : estimate_tokens(body);
    r->submit_ns = monotonic_ns();
    if (in->deadline_ms > 0)
      r->own_deadline_at_ms = r->deadline_at_ms = ceil_ms(r->submit_ns + uint64_t(in->deadline_ms) * 1000000);
    if (id_out) *id_out = r->id;
    // A cached answer has no events to replay: streams always go to the network.
    if (cache_ && !(in->flags & (BRG_REQ_NO_CACHE | BRG_REQ_STREAM))) {
      // A point read on the submitting thread: in threaded mode never the
      // reactor; inline, the owner thread, which DESIGN.md accepts for a
      // page-cache-hot SQLite lookup. Writes go to the cache's own thread.
      r->cache_key = ResponseCache::key(method, r->url.origin() + r->url.target, body);
      if (answer_from_cache(*r)) return 0;
    }
    submissions_.push(r.release());
    if (sleeping_.load(std::memory_order_seq_cst)) backend_->wake();
    return 0;
  } catch (const std::bad_alloc&) {
    return *err = "out of memory", BRG_E_NOMEM;
  } catch (...) {
    return *err = "internal error", BRG_E_INVALID;
  }
}

int Engine::push_command(Command::Kind kind, uint64_t id, int64_t deadline_ms) noexcept {
  auto* c = new (std::nothrow) Command;
  if (!c) return BRG_E_NOMEM;
  c->kind = kind;
  c->id = id;
  c->deadline_ms = deadline_ms;
  commands_.push(c);
  backend_->wake();
  return 0;
}

int Engine::cancel_group(uint64_t group) noexcept {
  if (threaded_.load(std::memory_order_acquire)) return push_command(Command::Kind::cancel_group, group, 0);
  drain_inputs();
  int n = cancel_group_now(group);
  publish_results();
  free_dead();
  return n;
}

int Engine::group_deadline(uint64_t group, int64_t deadline_ms) noexcept {
  if (threaded_.load(std::memory_order_acquire))
    return push_command(Command::Kind::group_deadline, group, deadline_ms);
  drain_inputs();
  group_deadline_now(group, deadline_ms);
  publish_results();
  return 0;
}

int Engine::cancel(uint64_t id) noexcept {
  if (id == 0 || id >= next_id_.load(std::memory_order_relaxed)) return BRG_E_NOTFOUND;
  if (threaded_.load(std::memory_order_acquire)) return push_command(Command::Kind::cancel, id, 0);
  drain_inputs();
  auto it = requests_.find(id);
  if (it == requests_.end()) return BRG_E_NOTFOUND;
  cancel_now(id);
  publish_results();
  free_dead();
  return 0;
}

// ---- reactor turn --------------------------------------------------------

int Engine::poll(int timeout_ms) noexcept {
  if (threaded_.load(std::memory_order_acquire)) return BRG_E_INVALID;
  int64_t ns = timeout_ms < 0 ? -1 : int64_t(timeout_ms) * 1000000;
  if (results_waiting_.load(std::memory_order_relaxed) > 0) ns = 0;
  int rc = run_turn(ns);
  if (rc < 0) return rc;
  return int(std::min<uint64_t>(results_waiting_.load(std::memory_order_relaxed), INT32_MAX));
}

int Engine::run_turn(int64_t timeout_ns) noexcept {
  drain_inputs();
  advance_timers();
  free_dead();  // a cancel above closes its connection before the wait, not after
  uint64_t next = wheel_->next_wake();
  if (next != UINT64_MAX) {
    uint64_t now = monotonic_ns();
    int64_t until = next * 1000000 > now ? int64_t(next * 1000000 - now) : 0;
    if (timeout_ns < 0 || until < timeout_ns) timeout_ns = until;
  }
  if (results_added_) timeout_ns = 0;
  bool threaded = threaded_.load(std::memory_order_relaxed);
  if (threaded) {
    sleeping_.store(true, std::memory_order_seq_cst);
    if (!submissions_.empty() || !commands_.empty() || stopping_.load(std::memory_order_seq_cst))
      timeout_ns = 0;
  }
  int rc = backend_->wait(timeout_ns);
  if (threaded) sleeping_.store(false, std::memory_order_relaxed);
  advance_timers();
  free_dead();
  publish_results();
  return rc < 0 ? BRG_E_BACKEND : 0;
}

// Only where no connection can be on the call stack: outside backend callbacks.
void Engine::free_dead() noexcept {
  for (Connection* c : dead_) delete c;
  dead_.clear();
}

void Engine::drain_inputs() noexcept {
  while (MpscNode* n = submissions_.pop()) accept(static_cast<Request*>(n));
  while (MpscNode* n = commands_.pop()) {
    auto* c = static_cast<Command*>(n);
    run_command(*c);
    delete c;
  }
}

void Engine::run_command(const Command& c) noexcept {
  switch (c.kind) {
    case Command::Kind::cancel: cancel_now(c.id); break;
    case Command::Kind::cancel_group: cancel_group_now(c.id); break;
    case Command::Kind::group_deadline: group_deadline_now(c.id, c.deadline_ms); break;
  }
}

void Engine::advance_timers() noexcept { wheel_->advance(now_ms()); }

void Engine::accept(Request* r) noexcept {
  submitted_.add();
  requests_.emplace(r->id, r);
  r->attempt_timer.fn = on_attempt_timer;
  r->attempt_timer.ctx = r;
  r->deadline_timer.fn = on_deadline_timer;
  r->deadline_timer.ctx = r;
  if (StreamState* s = r->stream.get()) {
    s->first_token_timer.fn = on_first_token_timer;
    s->first_token_timer.ctx = r;
    s->idle_timer.fn = on_stream_idle_timer;
    s->idle_timer.ctx = r;
  }
  if (r->deadline_at_ms) wheel_->arm(r->deadline_timer, r->deadline_at_ms);
  r->origin = origin_for(r->url);
  r->key = r->origin ? key_for(r->limit_key.empty() ? r->origin->key : r->limit_key) : nullptr;
  if (r->group_id) {
    r->group = group_for(r->group_id);
    if (r->group) {
      r->group->members.push_back(r->group_hook, r);
      apply_deadline(r);
    }
  }
  if (!r->origin || !r->key || (r->group_id && !r->group)) {
    finish(r, BRG_E_NOMEM, 0, "out of memory", {});
    return;
  }
  grant_or_queue(r);
}

// ---- groups ------------------------------------------------------------------

Group* Engine::group_for(uint64_t id) noexcept {
  try {
    auto& g = groups_[id];
    if (!g) g = std::make_unique<Group>();
    return g.get();
  } catch (...) {
    return nullptr;
  }
}

void Engine::leave_group(Request* r) noexcept {
  Group* g = r->group;
  if (!g) return;
  g->members.remove(r->group_hook);
  r->group = nullptr;
  // Keep a group whose deadline is still ahead: later members must see it.
  if (g->members.empty() && (g->deadline_at_ms == 0 || g->deadline_at_ms <= now_ms()))
    groups_.erase(r->group_id);
}

// The effective deadline is the earlier of the request's own and its group's.
void Engine::apply_deadline(Request* r) noexcept {
  uint64_t at = r->own_deadline_at_ms;
  r->group_deadline = false;
  if (r->group && r->group->deadline_at_ms && (at == 0 || r->group->deadline_at_ms < at)) {
    at = r->group->deadline_at_ms;
    r->group_deadline = true;
  }
  r->deadline_at_ms = at;
  if (at)
    wheel_->arm(r->deadline_timer, at);
  else if (r->deadline_timer.armed())
    wheel_->cancel(r->deadline_timer);
}

int Engine::cancel_group_now(uint64_t id) noexcept {
  auto it = groups_.find(id);
  if (it == groups_.end()) return 0;
  Group* g = it->second.get();
  g->deadline_at_ms = 0;  // let the group go once empty
  int n = 0;
  while (Request* r = g->members.front()) {
    bool last = g->members.size() == 1;
    finish(r, BRG_E_CANCELLED, 0, "cancelled with its group", {});
    ++n;
    if (last) break;  // finish() erased the group
  }
  return n;
}

void Engine::group_deadline_now(uint64_t id, int64_t deadline_ms) noexcept {
  Group* g = group_for(id);
  if (!g) return;
  g->deadline_ms = deadline_ms;
  g->deadline_at_ms = expiry_after(deadline_ms);
  g->members.for_each([this](Request* r) { apply_deadline(r); });
  // A deadline already past ends its members in this call, not a turn later.
  advance_timers();
}

void Engine::cancel_now(uint64_t id) noexcept {
  auto it = requests_.find(id);
  if (it == requests_.end()) return;
  finish(it->second, BRG_E_CANCELLED, 0, "cancelled by the caller", {});
}

bool Engine::answer_from_cache(const Request& r) noexcept {
  std::optional<CachedAnswer> hit = cache_->lookup(r.cache_key);
  if (!hit) return false;
  auto* h = new (std::nothrow) ResultHolder;
  if (!h) return false;  // serve it from the network instead
  stamp(h->pub, r, monotonic_ns());
  h->pub.flags = BRG_RES_CACHED;
  h->pub.status = BRG_OK;
  h->pub.http_status = hit->http_status;
  h->pub.queued_us = 0;
  h->pub.prompt_tokens = hit->prompt_tokens;
  h->pub.completion_tokens = hit->completion_tokens;
  h->body = std::move(hit->body);
  h->seal();
  cache_hits_.fetch_add(1, std::memory_order_relaxed);
  push_result(h);
  uint64_t one = 1;  // from the submitting thread: signal at once
  [[maybe_unused]] ssize_t n = ::write(results_fd_, &one, sizeof one);
  return true;
}

void Engine::push_result(ResultHolder* h) noexcept {
  results_.push(&h->node);
  results_waiting_.fetch_add(1, std::memory_order_relaxed);
}

void Engine::publish_results() noexcept {
  if (!results_added_) return;
  results_added_ = false;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(results_fd_, &one, sizeof one);
}

void Engine::thread_main() noexcept {
  while (!stopping_.load(std::memory_order_acquire)) {
    if (run_turn(-1) < 0) break;
  }
}

int Engine::start() noexcept {
  if (threaded_.load()) return BRG_E_INVALID;
  threaded_.store(true, std::memory_order_release);
  try {
    thread_ = std::thread([this] { thread_main(); });
  } catch (...) {
    threaded_.store(false);
    return BRG_E_BACKEND;
  }
  return 0;
}

// ---- lifecycle ---------------------------------------------------------------

void Engine::grant_or_queue(Request* r) noexcept {
  if (inflight_ < cfg_.max_inflight) {
    ++inflight_;
    inflight_count_.add();
    r->holds_slot = true;
    r->granted_ns = monotonic_ns();
    admit(r);
    return;
  }
  r->state = Request::State::queued;
  queued_.push_back(r->hook, r);
  queued_count_.add();
}

void Engine::pump_queue() noexcept {
  // A granted request can fail at once and finish, which pumps again: the
  // guard turns that recursion (one level per queued request) into a loop.
  if (pumping_) {
    pump_again_ = true;
    return;
  }
  pumping_ = true;
  do {
    pump_again_ = false;
    while (inflight_ < cfg_.max_inflight && !queued_.empty()) {
      Request* r = queued_.pop_front();
      queued_count_.sub();
      r->state = Request::State::detached;
      grant_or_queue(r);
    }
  } while (pump_again_);
  pumping_ = false;
}

// ---- rate limits -----------------------------------------------------------

LimitKey* Engine::key_for(const std::string& name) noexcept {
  try {
    auto& k = keys_[name];
    if (!k) {
      k = std::make_unique<LimitKey>(flow_limits_, monotonic_ns());
      k->engine = this;
      k->name = name;
      k->timer.fn = on_key_timer;
      k->timer.ctx = k.get();
    }
    return k.get();
  } catch (...) {
    return nullptr;
  }
}

// Every attempt passes its key's gate; requests already waiting go first.
void Engine::admit(Request* r) noexcept {
  LimitKey* k = r->key;
  if (k->waiting.empty()) {
    uint64_t retry_at = 0;
    switch (k->gate.acquire(r->tokens, monotonic_ns(), &retry_at)) {
      case RateGate::Verdict::go:
        r->probe = k->gate.take_probe_grant();
        start_attempt(r);
        return;
      case RateGate::Verdict::reject:
        rejected_.add();
        finish(r, BRG_E_UNAVAILABLE, 0,
               "circuit breaker open for '" + k->name + "' after repeated failures" +
                   (r->last_error.empty() ? "" : " (last: " + r->last_error + ")"),
               {});
        return;
      case RateGate::Verdict::wait:
        arm_key(k, retry_at);
        break;
    }
  }
  r->state = Request::State::rate_wait;
  k->waiting.push_back(r->hook, r);
  waiting_rate_.add();
}

// Tokens given back may let waiting requests go before the key's timer,
// which was armed for the pessimistic case: wake the queue now.
void Engine::credit(LimitKey* k, int64_t tokens, uint64_t now) noexcept {
  if (tokens <= 0) return;
  k->gate.refund(tokens, now);
  if (!k->waiting.empty()) arm_key(k, now);
}

void Engine::settle(LimitKey* k, int64_t estimated, int64_t actual, uint64_t now) noexcept {
  k->gate.settle(estimated, actual, now);
  if (actual >= 0 && actual < estimated && !k->waiting.empty()) arm_key(k, now);
}

// Breaker bookkeeping for one attempt's outcome. verdict: +1 the key works,
// -1 it failed, 0 no evidence either way (throttled, cancelled, cut short).
void Engine::report(Request* r, int verdict, uint64_t now) noexcept {
  RateGate& gate = r->key->gate;
  if (verdict > 0)
    gate.record_success();
  else if (verdict < 0)
    gate.record_failure(now);
  else if (r->probe)
    gate.abandon_probe();
  r->probe = false;
  refresh_key_stats(r->key, now);
}

void Engine::arm_key(LimitKey* k, uint64_t at_ns) noexcept {
  uint64_t at = ceil_ms(at_ns);
  if (!k->timer.armed() || k->timer.expiry() > at) wheel_->arm(k->timer, at);
}

void Engine::on_key_timer(void* ctx) noexcept {
  auto* k = static_cast<LimitKey*>(ctx);
  k->engine->pump_key(k);
}

void Engine::pump_key(LimitKey* k) noexcept {
  uint64_t now = monotonic_ns();
  refresh_key_stats(k, now);
  while (Request* r = k->waiting.front()) {
    uint64_t retry_at = 0;
    RateGate::Verdict v = k->gate.acquire(r->tokens, now, &retry_at);
    if (v == RateGate::Verdict::wait) {
      arm_key(k, retry_at);
      return;
    }
    k->waiting.remove(r->hook);
    waiting_rate_.sub();
    r->state = Request::State::detached;
    if (v == RateGate::Verdict::go) {
      r->probe = k->gate.take_probe_grant();
      start_attempt(r);
    } else {
      rejected_.add();
      finish(r, BRG_E_UNAVAILABLE, 0, "circuit breaker open for '" + k->name + "' after repeated failures", {});
    }
  }
}

// The stats count keys in cooldown or with an open breaker; the key timer
// runs when either ends, so the counts fall back in time.
void Engine::refresh_key_stats(LimitKey* k, uint64_t now) noexcept {
  bool cooling = k->gate.cooling(now);
  if (cooling != k->cooling) {
    k->cooling = cooling;
    cooling ? cooling_keys_.add() : cooling_keys_.sub();
    if (cooling) arm_key(k, k->gate.cooldown_end());
  }
  bool open = k->gate.breaker_open(now);
  if (open != k->breaker) {
    k->breaker = open;
    open ? breaker_keys_.add() : breaker_keys_.sub();
    if (open) arm_key(k, now + uint64_t(flow_limits_.breaker_pause_ms) * 1000000);
  }
}

void Engine::start_attempt(Request* r) noexcept {
  ++r->attempts;
  r->first_byte_ns = 0;
  wheel_->arm(r->attempt_timer, expiry_after(r->timeout_ms));
  dispatch(r);
}

// A free HTTP/2 stream, an idle connection, a new connection, or a wait.
void Engine::dispatch(Request* r) noexcept {
  Origin* o = r->origin;
  if (!r->force_fresh) {
    if (Connection* c = o->take_stream_slot()) {
      assign(c, r);
      return;
    }
    if (Connection* c = o->take_idle()) {
      conns_idle_.sub();
      wheel_->cancel(c->timer);
      assign(c, r);
      return;
    }
  }
  r->force_fresh = false;
  if (may_open(o, o->waiting.size())) {
    switch (addresses(o)) {
      case Addresses::ready:
        open_connection(o, r, 0);
        return;
      case Addresses::failed:
        r->state = Request::State::detached;
        fail_attempt(r, BRG_E_DNS, o->resolve_error);
        return;
      case Addresses::pending:
        break;  // resolved() serves the waiting list
    }
  }
  r->state = Request::State::waiting;
  o->waiting.push_back(r->hook, r);
}

// The origin's addresses (the proxy's, when it goes through one) for a new
// connection. The resolver caches by TTL; asking it at most once a second
// per origin keeps that cost off the per-connection path.
Engine::Addresses Engine::addresses(Origin* o) noexcept {
  constexpr uint64_t kRecheckMs = 1000;
  if (o->dns_waiting()) return Addresses::pending;
  uint64_t now = now_ms();
  if (!o->addrs.empty() && now - o->resolved_ms < kRecheckMs) return Addresses::ready;
  o->resolved_ms = now;
  o->resolving_inline = true;
  bool known = o->via_proxy ? dns_->resolve(proxy_.host(), proxy_.port(), o) : dns_->resolve(o->host, o->port, o);
  o->resolving_inline = false;
  if (!known) return o->addrs.empty() ? Addresses::pending : Addresses::ready;  // refresh in the background
  return o->resolve_error.empty() ? Addresses::ready : Addresses::failed;
}

void Origin::on_resolved(std::vector<SockAddr> found, std::string error) noexcept {
  if (!found.empty()) {
    addrs = std::move(found);
    resolve_error.clear();
  } else if (addrs.empty()) {
    resolve_error = std::move(error);
  }  // else a failed refresh: the last good addresses are still the best try
  if (!resolving_inline) engine->resolved(this);
}

// An answer arrived later (not from inside addresses()): serve or fail the waiting requests.
void Engine::resolved(Origin* o) noexcept {
  if (o->resolve_error.empty()) {
    serve_waiting(o);
    return;
  }
  if (o->open > 0) return;  // connections already open still serve the waiting list
  while (Request* r = o->waiting.pop_front()) {
    r->state = Request::State::detached;
    fail_attempt(r, BRG_E_DNS, o->resolve_error);
  }
}

// HTTP/1.1 opens a connection per waiting request; while the protocol is
// unknown one connection finds it out first; HTTP/2 opens only what the
// connections already opening cannot carry.
bool Engine::may_open(const Origin* o, size_t waiting) const noexcept {
  if (!o->can_open()) return false;
  switch (o->protocol) {
    case Origin::Protocol::h1: return true;
    case Origin::Protocol::unknown: return o->opening == 0;
    case Origin::Protocol::h2: return o->opening * o->streams_per_conn <= waiting;
  }
  return true;
}

void Engine::open_connection(Origin* o, Request* r, size_t addr_index) noexcept {
  auto* c = new (std::nothrow) Connection(conn_env_, o);
  int err = ENOMEM;
  if (!c || !c->open(o->addrs[addr_index], o->tls, o->host, o->host_is_ip, o->key, o->via_proxy, &err)) {
    delete c;
    std::string msg = "cannot open a socket to " + o->addrs[addr_index].to_string() + ": " + std::strerror(err);
    if (err == EMFILE || err == ENFILE) {
      rlimit rl{};
      getrlimit(RLIMIT_NOFILE, &rl);
      msg = "out of file descriptors (" + std::string(err == EMFILE ? "EMFILE" : "ENFILE") +
            ", limit " + std::to_string(rl.rlim_cur) +
            "): lower BRG_OPT_MAX_INFLIGHT / BRG_OPT_MAX_CONNS_PER_HOST or raise the open-files limit";
    }
    r->state = Request::State::active;
    fail_attempt(r, BRG_E_CONNECT, std::move(msg));
    return;
  }
  ++o->open;
  ++o->opening;
  conns_open_.add();
  conns_opened_.add();
  live_.insert(c);
  c->addr_index = addr_index;
  c->timer.fn = on_connection_timer;
  c->timer.ctx = c;
  wheel_->arm(c->timer, expiry_after(cfg_.connect_timeout_ms));
  c->owner_data = r;
  r->conn = c;
  r->state = Request::State::active;
}

void Engine::assign(Connection* c, Request* r) noexcept {
  r->sent_ns = monotonic_ns();
  r->conn = c;
  r->state = Request::State::active;
  if (StreamState* s = r->stream.get()) {
    s->start_attempt();
    if (s->first_token_timeout_ms > 0) wheel_->arm(s->first_token_timer, expiry_after(s->first_token_timeout_ms));
    if (s->idle_timeout_ms > 0) wheel_->arm(s->idle_timer, expiry_after(s->idle_timeout_ms));
  }
  if (!c->multiplexed()) {
    c->owner_data = r;
    c->send_request(r->wire, r->head, r->stream != nullptr);
    return;
  }
  c->owner_data = nullptr;
  if (c->timer.armed()) wheel_->cancel(c->timer);  // no longer idle
  std::string err;
  int32_t id = c->submit_stream(r->wire, r, &err);
  if (id < 0) {
    r->conn = nullptr;
    r->state = Request::State::detached;
    fail_attempt(r, id == BRG_E_CLOSED ? BRG_E_IO : id, std::move(err));
    return;
  }
  r->h2_stream = id;
  c->send_pending();  // r may have ended inside: not touched after this
}

void Engine::detach(Request* r, bool close_conn) noexcept {
  switch (r->state) {
    case Request::State::queued:
      queued_.remove(r->hook);
      queued_count_.sub();
      break;
    case Request::State::waiting:
      r->origin->waiting.remove(r->hook);
      break;
    case Request::State::rate_wait:
      r->key->waiting.remove(r->hook);
      waiting_rate_.sub();
      break;
    case Request::State::active:
      if (Connection* c = r->conn; c && c->multiplexed()) {
        // One stream ends (RST_STREAM); the connection serves the others.
        int32_t id = r->h2_stream;
        r->conn = nullptr;
        r->h2_stream = 0;
        c->cancel_stream(id);
        stream_slot_freed(c);
      } else if (c) {
        c->owner_data = nullptr;
        r->conn = nullptr;
        // A connection still connecting can serve the next request; one in
        // the middle of this request's exchange cannot be trusted again.
        if (close_conn && !c->establishing())
          close_connection(c, true);
      }
      break;
    default:
      break;
  }
}

void Engine::fail_attempt(Request* r, int status, std::string message, int http_status,
                          std::string body, int64_t retry_after) noexcept {
  cancel_timers(r);
  r->last_status = status;
  r->last_http = http_status;
  r->last_error = std::move(message);
  r->last_body = std::move(body);
  bool retryable = http_status ? retry_statuses_.contains(http_status) : is_retryable_error(status);
  // Events already handed out would be delivered again by a retry.
  if (r->stream && r->stream->delivered_total > 0) retryable = false;
  uint64_t now = monotonic_ns();
  if (status == BRG_E_CONNECT) credit(r->key, r->tokens, now);  // never reached the server
  // Throttling says the key is busy, not broken: only other failures feed
  // the breaker. A non-retryable HTTP status means the key answered fine.
  if (http_status == 429)
    report(r, 0, now);
  else if (retryable)
    report(r, -1, now);
  else if (http_status)
    report(r, +1, now);
  else
    report(r, 0, now);
  if (retryable && r->retries < uint32_t(r->max_retries)) {
    int64_t delay = backoff_delay_ms(retry_, r->retries + 1, random_.next());
    if (retry_after > delay) delay = retry_after;
    uint64_t at = expiry_after(delay);
    // A retry that cannot start before the deadline would only end in a
    // timeout; report the real failure now instead.
    if (!r->deadline_at_ms || at < r->deadline_at_ms) {
      ++r->retries;
      retried_.add();
      r->state = Request::State::backoff;
      wheel_->arm(r->attempt_timer, at);
      return;
    }
  }
  int final_status = http_status ? BRG_E_HTTP : status;
  std::string err = std::move(r->last_error);
  if (r->attempts > 1) err += " (after " + std::to_string(r->attempts) + " attempts)";
  finish(r, final_status, http_status, std::move(err), std::move(r->last_body));
}

void Engine::finish(Request* r, int status, int http_status, std::string error, std::string body,
                    int64_t prompt_tokens, int64_t completion_tokens) noexcept {
  uint64_t now = monotonic_ns();  // the outcome is decided now; teardown is not its latency
  detach(r, true);
  cancel_timers(r);
  if (r->deadline_timer.armed()) wheel_->cancel(r->deadline_timer);
  requests_.erase(r->id);

  auto* h = new (std::nothrow) ResultHolder;
  if (h) {
    stamp(h->pub, *r, now);
    h->pub.status = status;
    h->pub.http_status = http_status;
    h->pub.prompt_tokens = prompt_tokens;
    h->pub.completion_tokens = completion_tokens;
    h->body = std::move(body);
    h->error = std::move(error);
    h->request_id = std::move(r->request_id);
    if (status == BRG_OK && cache_ && !r->cache_key.empty())
      cache_->store(std::move(r->cache_key), CachedAnswer{http_status, h->body, prompt_tokens, completion_tokens});
    h->seal();
    push_result(h);
    results_added_ = true;
  }
  if (status == BRG_OK)
    completed_.add();
  else if (status == BRG_E_CANCELLED)
    cancelled_.add();
  else {
    failed_.add();
    if (status == BRG_E_TIMEOUT) timed_out_.add();
  }
  leave_group(r);
  if (r->probe && r->key) report(r, 0, now);  // cancelled or cut short mid-probe
  bool had_slot = r->holds_slot;
  delete r;
  if (had_slot) {
    --inflight_;
    inflight_count_.sub();
    pump_queue();
  }
}

// Every per-attempt timer; the deadline timer belongs to the whole request.
void Engine::cancel_timers(Request* r) noexcept {
  if (r->attempt_timer.armed()) wheel_->cancel(r->attempt_timer);
  if (StreamState* s = r->stream.get()) {
    if (s->first_token_timer.armed()) wheel_->cancel(s->first_token_timer);
    if (s->idle_timer.armed()) wheel_->cancel(s->idle_timer);
  }
}

void Engine::on_attempt_timer(void* ctx) noexcept {
  auto* r = static_cast<Request*>(ctx);
  Engine* e = r->engine;
  if (r->state == Request::State::backoff) {
    e->admit(r);
    return;
  }
  e->detach(r, true);
  r->state = Request::State::detached;
  e->fail_attempt(r, BRG_E_TIMEOUT,
                  "no response within " + std::to_string(r->timeout_ms) + " ms (attempt timeout)");
}

void Engine::on_deadline_timer(void* ctx) noexcept {
  auto* r = static_cast<Request*>(ctx);
  std::string why = r->group_deadline
                        ? "group deadline of " + std::to_string(r->group->deadline_ms) + " ms exceeded"
                        : "deadline of " + std::to_string(r->deadline_ms) + " ms exceeded";
  r->engine->finish(r, BRG_E_TIMEOUT, 0, std::move(why), {});
}

// ---- connections ----------------------------------------------------------

Origin* Engine::origin_for(const http::Url& url) noexcept {
  try {
    std::string key = url.origin();
    auto it = origins_.find(key);
    if (it != origins_.end()) return it->second.get();
    auto o = std::make_unique<Origin>();
    o->key = key;
    o->host = url.host;
    o->port = url.port;
    o->tls = url.scheme == http::Scheme::https;
    o->host_is_ip = url.host_is_ip;
    if (!o->tls || cfg_.http_version == 1) o->protocol = Origin::Protocol::h1;
    o->max_open = cfg_.max_conns_per_host > 0 ? size_t(cfg_.max_conns_per_host) : SIZE_MAX;
    // Only https goes through the proxy (HTTPS_PROXY); the proxy resolves the origin's name.
    o->via_proxy = o->tls && proxy_.is_set() && !proxy_.bypass(url.host, url.port);
    o->engine = this;
    Origin* raw = o.get();
    origins_.emplace(std::move(key), std::move(o));
    return raw;
  } catch (...) {
    return nullptr;
  }
}

void Engine::connection_available(Connection* c) noexcept {
  auto* o = static_cast<Origin*>(c->origin());
  if (Request* r = o->waiting.pop_front()) {
    assign(c, r);
    return;
  }
  o->put_idle(c);
  conns_idle_.add();
  wheel_->arm(c->timer, expiry_after(cfg_.idle_timeout_ms));
}

void Engine::retire(Connection* c) noexcept {
  auto* o = static_cast<Origin*>(c->origin());
  if (c->opening) {
    c->opening = false;
    --o->opening;
  }
  o->forget_multiplexed(c);
  if (c->hook.linked()) {
    o->forget_idle(c);
    conns_idle_.sub();
  }
  if (c->timer.armed()) wheel_->cancel(c->timer);
  --o->open;
  conns_open_.sub();
  live_.erase(c);
  dead_.push_back(c);  // freed after this turn: it may be on the call stack
}

void Engine::close_connection(Connection* c, bool abort) noexcept {
  c->close(abort);
  retire(c);
  serve_waiting(static_cast<Origin*>(c->origin()));
}

// A connection slot of o just freed up: give it to the oldest waiting request.
void Engine::serve_waiting(Origin* o) noexcept {
  while (!o->waiting.empty()) {
    Connection* c = o->take_stream_slot();
    if (!c) break;
    assign(c, o->waiting.pop_front());
  }
  while (!o->waiting.empty() && may_open(o, o->waiting.size() - 1)) {
    Addresses a = addresses(o);
    if (a == Addresses::pending) return;  // resolved() comes back here
    Request* r = o->waiting.pop_front();
    if (a == Addresses::failed) {
      r->state = Request::State::detached;
      fail_attempt(r, BRG_E_DNS, o->resolve_error);
      continue;
    }
    open_connection(o, r, 0);
  }
}

// An HTTP/2 connection has room again: waiting requests first; a drained
// connection the server is retiring (GOAWAY) closes; an empty one idles.
void Engine::stream_slot_freed(Connection* c) noexcept {
  if (c->state() == Connection::State::closed) return;
  auto* o = static_cast<Origin*>(c->origin());
  o->streams_per_conn = std::max<uint32_t>(1, c->stream_limit());
  if (c->going_away()) {
    if (c->streams() == 0) close_connection(c, false);
    return;
  }
  serve_waiting(o);
  if (c->streams() == 0 && c->state() == Connection::State::ready && !c->timer.armed())
    wheel_->arm(c->timer, expiry_after(cfg_.idle_timeout_ms));
}

void Engine::on_connection_timer(void* ctx) noexcept {
  auto* c = static_cast<Connection*>(ctx);
  auto* e = static_cast<Engine*>(c->events());
  if (c->establishing()) {
    const char* phase = c->state() == Connection::State::handshaking ? "TLS handshake with "
                        : c->state() == Connection::State::tunneling ? "CONNECT through the proxy at "
                                                                      : "connecting to ";
    c->close(true);
    e->on_failure(*c, BRG_E_TIMEOUT,
                  phase + c->address().to_string() + " took longer than " +
                      std::to_string(e->cfg_.connect_timeout_ms) + " ms");
    return;
  }
  e->close_connection(c, false);  // idle too long
}

void Engine::on_ready(Connection& c) noexcept {
  wheel_->cancel(c.timer);
  if (c.tls_resumed()) tls_resumed_.add();
  auto* o = static_cast<Origin*>(c.origin());
  c.opening = false;
  --o->opening;
  auto* r = static_cast<Request*>(c.owner_data);
  if (c.multiplexed()) {
    o->protocol = Origin::Protocol::h2;
    o->streams_per_conn = std::max<uint32_t>(1, c.stream_limit());
    o->multiplexed.push_back(&c);
    if (r) assign(&c, r);
    stream_slot_freed(&c);
    return;
  }
  bool learned = o->protocol == Origin::Protocol::unknown;
  o->protocol = Origin::Protocol::h1;
  if (r)
    assign(&c, r);
  else
    connection_available(&c);
  if (learned) serve_waiting(o);  // the requests that waited to learn it
}

void Engine::on_first_byte(Connection& c) noexcept {
  if (auto* r = static_cast<Request*>(c.owner_data)) r->first_byte_ns = monotonic_ns();
}

// ---- streamed answers ---------------------------------------------------------

void Engine::on_body(Connection& c) noexcept {
  auto* r = static_cast<Request*>(c.owner_data);
  if (!r || !r->stream) return;
  StreamState& s = *r->stream;
  http::ResponseParser& resp = c.response();
  const std::string& body = resp.body();
  std::string_view piece(body.data() + s.body_seen, body.size() - s.body_seen);
  s.body_seen = body.size();
  feed_stream(r, resp.status(), resp.header("content-type"), piece, c.address());
}

void Engine::on_stream_data(Connection& c, void* user, http::H2Response& resp, std::string_view piece) noexcept {
  auto* r = static_cast<Request*>(user);
  if (r->stream) feed_stream(r, resp.status(), resp.header("content-type"), piece, c.address());
}

// Received body bytes of a streamed request, over either protocol.
void Engine::feed_stream(Request* r, int http_status, std::string_view content_type, std::string_view piece,
                         const SockAddr& from) noexcept {
  StreamState& s = *r->stream;
  if (!s.checked) {
    // Error answers and servers that ignore "stream" are read whole, as usual.
    s.checked = true;
    s.sse_body = http_status >= 200 && http_status < 300 && content_type.size() >= 17 &&
                 http::iequals(content_type.substr(0, 17), "text/event-stream");
  }
  if (!s.sse_body) return;
  uint64_t now = monotonic_ns();
  uint32_t before = s.events;
  http::SseParser::Status st =
      s.sse.feed(piece, [&](const http::SseEvent& ev) noexcept { return deliver_event(r, http_status, ev.data, now); });
  if (st == http::SseParser::Status::error) {
    std::string why = "server-sent event stream from " + from.to_string() + ": " + std::string(s.sse.error());
    detach(r, true);
    r->state = Request::State::detached;
    fail_attempt(r, BRG_E_TOO_LARGE, std::move(why));
    return;
  }
  if (s.events != before && s.idle_timeout_ms > 0) wheel_->arm(s.idle_timer, expiry_after(s.idle_timeout_ms));
}

// One data event becomes one partial result. Returns true (keep parsing).
bool Engine::deliver_event(Request* r, int http_status, std::string_view data, uint64_t now) noexcept {
  StreamState& s = *r->stream;
  http::StreamEventInfo info = stream_events_.read(data);
  s.merge_usage(info.usage);
  if (info.done) return true;
  if (info.token) {
    if (s.first_token_ns == 0 && s.first_token_timer.armed()) wheel_->cancel(s.first_token_timer);
    s.token_at(now);
  }
  ++s.events;
  ++s.delivered_total;
  auto* h = new (std::nothrow) ResultHolder;
  if (!h) return true;  // the final result still carries the whole stream
  try {
    h->body.assign(data);
  } catch (...) {
    delete h;
    return true;
  }
  stamp(h->pub, *r, now);
  h->pub.flags = BRG_RES_PARTIAL;
  h->pub.status = BRG_OK;
  h->pub.http_status = http_status;
  h->seal();
  push_result(h);
  results_added_ = true;
  return true;
}

void Engine::stream_timed_out(Request* r, const char* what, int64_t ms) noexcept {
  detach(r, true);
  r->state = Request::State::detached;
  fail_attempt(r, BRG_E_TIMEOUT, std::string(what) + " " + std::to_string(ms) + " ms");
}

void Engine::on_first_token_timer(void* ctx) noexcept {
  auto* r = static_cast<Request*>(ctx);
  r->engine->stream_timed_out(r, "no first token (non-empty delta) within the first-token timeout of",
                              r->stream->first_token_timeout_ms);
}

void Engine::on_stream_idle_timer(void* ctx) noexcept {
  auto* r = static_cast<Request*>(ctx);
  r->engine->stream_timed_out(r, "no server-sent event within the stream idle timeout of",
                              r->stream->idle_timeout_ms);
}

// What the engine keeps of a complete answer, whichever protocol carried it.
template <class Response>
Engine::Answer Engine::take_answer(Response& resp) noexcept {
  Answer a;
  a.status = resp.status();
  a.body = std::move(resp.body());
  a.retry_after = retry_after_ms(resp.header("retry-after"), resp.header("retry-after-ms"), unix_now_ms());
  a.request_id = resp.header("x-request-id");  // OpenAI; Anthropic says request-id
  if (a.request_id.empty()) a.request_id = resp.header("request-id");
  a.remaining_requests = parse_count(resp.header("x-ratelimit-remaining-requests"));
  a.reset_requests_ns = parse_reset_duration_ns(resp.header("x-ratelimit-reset-requests"));
  a.remaining_tokens = parse_count(resp.header("x-ratelimit-remaining-tokens"));
  a.reset_tokens_ns = parse_reset_duration_ns(resp.header("x-ratelimit-reset-tokens"));
  return a;
}

void Engine::on_response(Connection& c) noexcept {
  auto* r = static_cast<Request*>(c.owner_data);
  c.owner_data = nullptr;
  Answer a = take_answer(c.response());
  // The connection goes back first so a request released below can use it.
  if (c.reusable())
    connection_available(&c);
  else
    close_connection(&c, false);
  if (r) answered(r, std::move(a));
}

void Engine::answered(Request* r, Answer a) noexcept {
  uint64_t now = monotonic_ns();
  int status = a.status;
  RateGate& gate = r->key->gate;
  gate.observe_limits(a.remaining_requests, a.reset_requests_ns, a.remaining_tokens, a.reset_tokens_ns, now);
  if (status == 429 || status == 503) {
    // The key cools down: nothing of it starts before the server's instant.
    int64_t pause = a.retry_after >= 0 ? a.retry_after : backoff_delay_ms(retry_, r->retries + 1, random_.next());
    gate.cool_down_until(now + uint64_t(pause) * 1000000);
  }
  if (status == 429) {
    throttled_.add();
    credit(r->key, r->tokens, now);  // refused, so no tokens were spent
  }
  refresh_key_stats(r->key, now);
  r->request_id = std::move(a.request_id);
  r->conn = nullptr;
  r->state = Request::State::detached;
  http::Usage usage;
  if (r->stream && r->stream->sse_body)
    usage = r->stream->usage;
  else if (!a.body.empty())
    usage = usage_reader_.read(a.body);
  if (status >= 200 && status < 300) {
    settle(r->key, r->tokens,
           usage.prompt_tokens >= 0 && usage.completion_tokens >= 0 ? usage.prompt_tokens + usage.completion_tokens
                                                                    : -1,
           now);
    report(r, +1, now);
    if (usage.prompt_tokens > 0) prompt_tokens_.add(uint64_t(usage.prompt_tokens));
    if (usage.completion_tokens > 0) completion_tokens_.add(uint64_t(usage.completion_tokens));
    cancel_timers(r);
    finish(r, BRG_OK, status, "", std::move(a.body), usage.prompt_tokens, usage.completion_tokens);
    return;
  }
  // An error answer generated nothing: its estimate goes back to the bucket
  // (429s were credited above), so no debt outlives it.
  if (status != 429) settle(r->key, r->tokens, 0, now);
  std::string reason = http_reason(status);
  fail_attempt(r, BRG_E_HTTP, "HTTP " + std::to_string(status) + (reason.empty() ? "" : " " + reason), status,
               std::move(a.body), a.retry_after);
}

void Engine::on_stream_first_byte(Connection&, void* user) noexcept {
  static_cast<Request*>(user)->first_byte_ns = monotonic_ns();
}

void Engine::on_stream_response(Connection& c, void* user, http::H2Response& resp) noexcept {
  auto* r = static_cast<Request*>(user);
  Answer a = take_answer(resp);
  r->conn = nullptr;
  r->h2_stream = 0;
  stream_slot_freed(&c);
  answered(r, std::move(a));
}

void Engine::on_stream_failure(Connection& c, void* user, int status, std::string message,
                               bool unprocessed) noexcept {
  auto* r = static_cast<Request*>(user);
  r->conn = nullptr;
  r->h2_stream = 0;
  r->state = Request::State::detached;
  // The server never acted on it (REFUSED_STREAM, beyond a GOAWAY): another
  // connection gets it without charging a retry, a few times at most.
  if (unprocessed && r->unprocessed < 3 && !(r->stream && r->stream->delivered_total > 0)) {
    ++r->unprocessed;
    dispatch(r);
  } else {
    fail_attempt(r, status, std::move(message));
  }
  stream_slot_freed(&c);
}

void Engine::on_failure(Connection& c, int status, std::string message) noexcept {
  auto* r = static_cast<Request*>(c.owner_data);
  c.owner_data = nullptr;
  auto* o = static_cast<Origin*>(c.origin());
  bool reused = c.reused();
  bool started = c.response_started();
  size_t next_addr = c.addr_index + 1;
  bool connect_phase = status == BRG_E_CONNECT;
  retire(&c);
  if (r) {
    r->conn = nullptr;
    if (connect_phase && next_addr < o->addrs.size()) {
      // Try the origin's next address before charging the attempt.
      open_connection(o, r, next_addr);
      serve_waiting(o);
      return;
    }
    if (reused && !started && status == BRG_E_IO && !r->stale_retry_used) {
      // The server closed a keep-alive connection we thought was idle: not
      // the request's fault, so one fresh attempt is free.
      r->stale_retry_used = true;
      if (o->can_open())
        open_connection(o, r, 0);
      else {
        r->state = Request::State::waiting;
        o->waiting.push_front(r->hook, r);
      }
      serve_waiting(o);
      return;
    }
    r->state = Request::State::detached;
    fail_attempt(r, status, std::move(message));
  }
  serve_waiting(o);
}

// ---- results and introspection ----------------------------------------------

size_t Engine::take_results(brg_result** out, size_t max) noexcept {
  if (!out || max == 0) return 0;
  uint64_t v;
  [[maybe_unused]] ssize_t rd = ::read(results_fd_, &v, sizeof v);
  size_t n = 0, finals = 0;
  while (n < max) {
    MpscNode* node = results_.pop();
    if (!node) break;
    out[n] = &ResultHolder::from_node(node)->pub;
    if (!(out[n++]->flags & BRG_RES_PARTIAL)) ++finals;
  }
  results_waiting_.fetch_sub(n, std::memory_order_relaxed);
  pending_.fetch_sub(int64_t(finals), std::memory_order_relaxed);
  if (results_waiting_.load(std::memory_order_relaxed) > 0) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t w = ::write(results_fd_, &one, sizeof one);
  }
  return n;
}

int Engine::backend_fd() const noexcept {
  return threaded_.load(std::memory_order_relaxed) ? -1 : backend_->poll_fd();
}

int Engine::backend_timeout() const noexcept {
  if (!submissions_.empty() || backend_->has_pending()) return 0;
  int64_t t = wheel_->timeout_ms(monotonic_ms());
  return int(t);
}

void Engine::stats(struct brg_stats* out) const noexcept {
  struct brg_stats s{};
  s.size = out->size;
  s.backend = int32_t(backend_->kind());
  uint64_t hits = cache_hits_.load(std::memory_order_relaxed);
  s.submitted = submitted_.get() + hits;
  s.completed = completed_.get() + hits;
  s.failed = failed_.get();
  s.cancelled = cancelled_.get();
  s.retried = retried_.get();
  s.timed_out = timed_out_.get();
  s.queued = queued_count_.get();
  s.in_flight = inflight_count_.get();
  s.connections_open = conns_open_.get();
  s.connections_idle = conns_idle_.get();
  s.connections_opened = conns_opened_.get();
  s.tls_resumed = tls_resumed_.get();
  s.bytes_sent = bytes_sent_.get();
  s.bytes_received = bytes_received_.get();
  s.results_waiting = results_waiting_.load(std::memory_order_relaxed);
  s.waiting_rate = waiting_rate_.get();
  s.throttled = throttled_.get();
  s.cooling_keys = cooling_keys_.get();
  s.breaker_open_keys = breaker_keys_.get();
  s.rejected = rejected_.get();
  s.prompt_tokens = prompt_tokens_.get();
  s.completion_tokens = completion_tokens_.get();
  s.cache_hits = hits;
  std::memcpy(out, &s, std::min<size_t>(out->size, sizeof s));
}

}  // namespace barrage
