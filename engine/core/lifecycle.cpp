// The request lifecycle: the transitions, the retry decision applied, and
// the events that feed them. See lifecycle.hpp for the rules.
#include "core/lifecycle.hpp"

#include "core/answer_head.hpp"

#include <algorithm>
#include <chrono>

#include "barrage.h"
#include "flow/rate_headers.hpp"

namespace barrage {

namespace {

int64_t unix_now_ms() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
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

FailurePhase phase_of(ExchangePhase p) noexcept {
  switch (p) {
    case ExchangePhase::connect: return FailurePhase::connect;
    case ExchangePhase::send: return FailurePhase::send;
    case ExchangePhase::response: return FailurePhase::response;
  }
  return FailurePhase::response;
}

FailureFacts facts_of(const ExchangeFailure& f) noexcept {
  FailureFacts ff;
  ff.status = f.status;
  ff.phase = phase_of(f.phase);
  ff.reused = f.reused;
  ff.unprocessed = f.unprocessed;
  ff.local = f.local;
  return ff;
}

Request* from_waiter(PoolWaiter* w) noexcept { return static_cast<Request*>(w); }
Request* from_key_waiter(KeyWaiter* w) noexcept { return static_cast<Request*>(w); }

}  // namespace

Lifecycle::Lifecycle(const LifecycleSettings& settings, TimerWheel& wheel, const Clock& clock, ChannelSource& pool,
                     LimitKeys& keys, Results& results, ResponseCache* cache, uint64_t seed) noexcept
    : settings_(settings),
      wheel_(wheel),
      clock_(clock),
      pool_(pool),
      keys_(keys),
      results_(results),
      cache_(cache),
      groups_(wheel, clock),
      stream_(wheel, clock, results),
      random_(seed) {}

Lifecycle::~Lifecycle() {
  for (auto& [id, r] : requests_) {
    cancel_timers(r);
    if (r->deadline_timer.armed()) wheel_.cancel(r->deadline_timer);
    delete r;
  }
}

// ---- entry points -----------------------------------------------------------

void Lifecycle::accept(Request* r) noexcept {
  counters_.submitted.add();
  r->lifecycle = this;
  r->attempt_timer = Timer{on_attempt_timer, r};
  r->deadline_timer = Timer{on_deadline_timer, r};
  if (StreamState* s = r->stream.get()) {
    s->first_token_timer = Timer{on_first_token_timer, r};
    s->idle_timer = Timer{on_stream_idle_timer, r};
  }
  bool ok = true;
  try {
    requests_.emplace(r->id, r);
  } catch (...) {
    ok = false;
  }
  if (r->deadline_at_ms) wheel_.arm(r->deadline_timer, r->deadline_at_ms);
  r->origin = pool_.origin(r->url);
  if (r->origin) r->key = keys_.key(r->limit_key.empty() ? r->origin->key : r->limit_key, clock_.now_ns());
  if (r->group_id && !groups_.join(*r)) ok = false;
  if (!ok || !r->origin || !r->key) {
    finish(r, BRG_E_NOMEM, 0, "out of memory", {});
    return;
  }
  take_slot(r);
}

bool Lifecycle::cancel(uint64_t id) noexcept {
  auto it = requests_.find(id);
  if (it == requests_.end()) return false;
  finish(it->second, BRG_E_CANCELLED, 0, "cancelled by the caller", {});
  return true;
}

int Lifecycle::cancel_group(uint64_t id) noexcept {
  Group* g = groups_.find(id);
  if (!g) return 0;
  g->deadline_at_ms = 0;  // let the group go once empty
  int n = 0;
  while (Request* r = g->members.front()) {
    bool last = g->members.size() == 1;
    finish(r, BRG_E_CANCELLED, 0, "cancelled with its group", {});
    ++n;
    if (last) break;  // leaving erased the group
  }
  groups_.forget_if_empty(id);
  return n;
}

void Lifecycle::group_deadline(uint64_t group, int64_t deadline_ms) noexcept {
  groups_.set_deadline(group, deadline_ms);
}

void Lifecycle::run_ready(const TimeBudget& budget) noexcept {
  if (running_) return;
  running_ = true;
  // The pool's work first: a connection an answer just freed goes back to
  // its origin before a ready request asks for one (else it would open another).
  // One item at least, so that every turn moves; then until the budget is spent.
  for (bool first = true; first || !budget.spent(); first = false) {
    if (pool_.flush(budget)) continue;
    Request* r = ready_.pop_front();
    if (!r) break;
    step(r);
  }
  running_ = false;
}

// ---- transitions ------------------------------------------------------------

void Lifecycle::make_ready(Request* r, Request::State next) noexcept {
  r->state = next;
  ready_.push_back(r->hook, r);
}

void Lifecycle::step(Request* r) noexcept {
  Request::State next = r->state;
  r->state = Request::State::stepping;  // in no list now
  switch (next) {
    case Request::State::to_admit: admit(r); break;
    case Request::State::to_dispatch: dispatch(r); break;
    default: break;
  }
}

void Lifecycle::take_slot(Request* r) noexcept {
  if (inflight_ < settings_.max_inflight) {
    ++inflight_;
    counters_.in_flight.add();
    r->holds_slot = true;
    if (!r->granted_ns) r->granted_ns = clock_.now_ns();  // queued_us: until the first slot
    make_ready(r, Request::State::to_admit);
    return;
  }
  r->state = Request::State::queued;
  queued_.push_back(r->hook, r);
  counters_.queued.add();
}

void Lifecycle::admit(Request* r) noexcept {
  switch (keys_.admit(*r->key, *r, clock_.now_ns())) {
    case LimitKeys::Admit::go:
      start_attempt(r);
      dispatch(r);
      return;
    case LimitKeys::Admit::wait:
      // Waiting for a key holds no slot, so a key cooling down cannot stall
      // other keys; the wait is bounded by the attempt timeout.
      r->state = Request::State::rate_wait;
      r->rate_wait_ns = clock_.now_ns();
      if (r->timeout_ms > 0) wheel_.arm(r->attempt_timer, clock_.expiry_after(r->timeout_ms));
      release_slot(r);
      return;
    case LimitKeys::Admit::reject:
      finish(r, BRG_E_UNAVAILABLE, 0,
             "circuit breaker open for '" + r->key->name + "' after repeated failures" +
                 (r->last_error.empty() ? "" : " (last: " + r->last_error + ")"),
             {});
      return;
  }
}

void Lifecycle::start_attempt(Request* r) noexcept {
  ++r->attempts;
  r->first_byte_ns = 0;
  if (r->timeout_ms > 0) wheel_.arm(r->attempt_timer, clock_.expiry_after(r->timeout_ms));
}

void Lifecycle::dispatch(Request* r) noexcept {
  bool fresh = r->fresh_connection;
  r->fresh_connection = false;
  r->state = Request::State::waiting;
  ChannelSource::Acquired a = pool_.acquire(*r->origin, *r, fresh);
  if (a.channel) {
    start_exchange(r, a.channel);
  } else if (a.failed) {
    int reported = a.failure.http_status;
    std::string msg = std::move(a.failure.message);
    fail_attempt(r, facts_of(a.failure), reported, std::move(msg));
  }
}

void Lifecycle::start_exchange(Request* r, Channel* c) noexcept {
  r->sent_ns = clock_.now_ns();
  r->state = Request::State::active;
  if (r->stream) stream_.begin_attempt(*r);
  std::string err;
  int64_t handle = c->start(r->head, r->stream != nullptr, this, r, &err);
  if (handle < 0) {
    FailureFacts f;
    f.status = handle == BRG_E_CLOSED ? BRG_E_IO : int(handle);
    f.phase = FailurePhase::send;
    fail_attempt(r, f, 0, std::move(err));
    return;
  }
  r->channel = c;
  r->exchange = handle;
}

void Lifecycle::answered(Request* r, http::Response& resp) noexcept {
  uint64_t now = clock_.now_ns();
  int status = resp.status();
  AnswerFacts a;
  a.http_status = status;
  a.retry_after_ms = retry_after_ms(resp.header("retry-after"), resp.header("retry-after-ms"), unix_now_ms());
  a.remaining_requests = parse_count(resp.header("x-ratelimit-remaining-requests"));
  a.reset_requests_ns = parse_reset_duration_ns(resp.header("x-ratelimit-reset-requests"));
  a.remaining_tokens = parse_count(resp.header("x-ratelimit-remaining-tokens"));
  a.reset_tokens_ns = parse_reset_duration_ns(resp.header("x-ratelimit-reset-tokens"));
  r->retry_after_ms = a.retry_after_ms;  // the caller sees what the server asked for
  // A server may ask for any wait (Retry-After: 1000000000); none is obeyed
  // past the ceiling, so a lying or broken server cannot freeze a key.
  const int64_t ceiling_ms = settings_.max_server_wait_ms;
  const int64_t ceiling_ns = ceiling_ms > INT64_MAX / 1000000 ? INT64_MAX : ceiling_ms * 1000000;
  a.retry_after_ms = std::min(a.retry_after_ms, ceiling_ms);
  a.reset_requests_ns = std::min(a.reset_requests_ns, ceiling_ns);
  a.reset_tokens_ns = std::min(a.reset_tokens_ns, ceiling_ns);
  bool throttled = status == 429 || status == 503;
  int64_t fallback_pause = throttled ? backoff_delay_ms(settings_.retry, r->retries + 1, random_.next()) : 0;
  keys_.observe(*r->key, *r, a, fallback_pause, now);
  keep_answer_head(*r, resp);
  std::string body = std::move(resp.body());
  http::Usage usage;
  if (r->stream && r->stream->sse_body)
    usage = r->stream->usage;
  else if (!body.empty())
    usage = usage_reader_.read(body);
  if (status >= 200 && status < 300) {
    bool known = usage.prompt_tokens >= 0 && usage.completion_tokens >= 0;
    keys_.settle(*r->key, r->tokens, known ? usage.prompt_tokens + usage.completion_tokens : -1, now);
    keys_.report(*r->key, *r, +1, now);
    if (usage.prompt_tokens > 0) counters_.prompt_tokens.add(uint64_t(usage.prompt_tokens));
    if (usage.completion_tokens > 0) counters_.completion_tokens.add(uint64_t(usage.completion_tokens));
    finish(r, BRG_OK, status, "", std::move(body), usage.prompt_tokens, usage.completion_tokens);
    return;
  }
  // An error answer generated nothing: its estimate goes back to the bucket
  // (429s were credited by observe), so no debt outlives it.
  if (status != 429) keys_.settle(*r->key, r->tokens, 0, now);
  FailureFacts f;
  f.status = BRG_E_HTTP;
  f.http_status = status;
  f.phase = FailurePhase::response;
  f.retry_after_ms = a.retry_after_ms;
  std::string reason = http_reason(status);
  fail_attempt(r, f, status, "HTTP " + std::to_string(status) + (reason.empty() ? "" : " " + reason),
               std::move(body));
}

void Lifecycle::fail_attempt(Request* r, const FailureFacts& f, int reported_http, std::string message,
                             std::string body) noexcept {
  uint64_t now = clock_.now_ns();
  RequestFacts rf;
  rf.retries = r->retries;
  rf.max_retries = r->max_retries;
  rf.free_resends = r->free_resends;
  rf.stale_retry_used = r->stale_retry_used;
  rf.events_delivered = r->stream && r->stream->delivered_total > 0;
  rf.deadline_at_ms = r->deadline_at_ms;
  RetryDecision d = decide_retry(f, rf, settings_.retry_statuses, settings_.retry, now / 1000000, random_.next());
  // Free re-sends keep the attempt (and its timer): not the request's fault.
  if (d.action == RetryAction::resend_now) {
    ++r->free_resends;
    make_ready(r, Request::State::to_dispatch);
    return;
  }
  if (d.action == RetryAction::fresh_connection) {
    r->stale_retry_used = true;
    r->fresh_connection = true;
    make_ready(r, Request::State::to_dispatch);
    return;
  }
  cancel_timers(r);
  r->last_status = f.status;
  r->last_http = reported_http;
  r->last_error = std::move(message);
  r->last_body = std::move(body);
  if (f.status == BRG_E_CONNECT) keys_.credit(*r->key, r->tokens, now);  // never reached the server
  // Throttling says the key is busy, not broken, and a local failure says
  // nothing of it: only other failures feed the breaker. A non-retryable
  // HTTP status means the key answered fine.
  int verdict = f.http_status == 429 || f.local ? 0 : d.retryable ? -1 : f.http_status ? +1 : 0;
  keys_.report(*r->key, *r, verdict, now);
  if (d.action == RetryAction::back_off) {
    ++r->retries;
    counters_.retried.add();
    r->state = Request::State::backoff;
    wheel_.arm(r->attempt_timer, d.at_ms);
    release_slot(r);  // sleeping is not sending
    return;
  }
  int final_status = f.http_status ? BRG_E_HTTP : f.status;
  std::string err = std::move(r->last_error);
  if (r->attempts > 1) err += " (after " + std::to_string(r->attempts) + " attempts)";
  finish(r, final_status, reported_http, std::move(err), std::move(r->last_body));
}

void Lifecycle::finish(Request* r, int status, int http_status, std::string error, std::string body,
                       int64_t prompt_tokens, int64_t completion_tokens) noexcept {
  uint64_t now = clock_.now_ns();  // the outcome is decided now; teardown is not its latency
  detach(r);
  cancel_timers(r);
  if (r->deadline_timer.armed()) wheel_.cancel(r->deadline_timer);
  requests_.erase(r->id);
  if (Outcome* o = results_.stamped(*r, now)) {
    o->status = status;
    o->http_status = http_status;
    o->prompt_tokens = prompt_tokens;
    o->completion_tokens = completion_tokens;
    o->body = std::move(body);
    o->error = std::move(error);
    o->request_id = std::move(r->request_id);
    o->headers = std::move(r->headers);
    o->retry_after_ms = r->retry_after_ms;
    if (status == BRG_OK && cache_ && !r->cache_key.empty())
      cache_->store(std::move(r->cache_key), CachedAnswer{http_status, o->body, prompt_tokens, completion_tokens});
    results_.push(o);
  }
  if (status == BRG_OK)
    counters_.completed.add();
  else if (status == BRG_E_CANCELLED)
    counters_.cancelled.add();
  else {
    counters_.failed.add();
    if (status == BRG_E_TIMEOUT) counters_.timed_out.add();
  }
  groups_.leave(*r);
  if (r->probe && r->key) keys_.report(*r->key, *r, 0, now);  // cancelled or cut short mid-probe
  release_slot(r);
  r->state = Request::State::done;
  delete r;
}

void Lifecycle::release_slot(Request* r) noexcept {
  if (!r->holds_slot) return;
  r->holds_slot = false;
  --inflight_;
  counters_.in_flight.sub();
  // Requests a key already let through waited longest: they go first.
  keys_.offer_slots();
  while (slot_free()) {
    Request* next = queued_.pop_front();
    if (!next) break;
    counters_.queued.sub();
    take_slot(next);
  }
}

// Out of whatever list or exchange r is in. An exchange is cancelled: the
// channel resets its stream, or closes an HTTP/1.1 connection mid-answer.
void Lifecycle::detach(Request* r) noexcept {
  switch (r->state) {
    case Request::State::queued:
      queued_.remove(r->hook);
      counters_.queued.sub();
      break;
    case Request::State::to_admit:
    case Request::State::to_dispatch:
      ready_.remove(r->hook);
      break;
    case Request::State::rate_wait:
      keys_.withdraw(*r->key, *r);
      break;
    case Request::State::waiting:
      pool_.withdraw(*r->origin, *r);
      break;
    case Request::State::active:
      if (Channel* c = r->channel) {
        r->channel = nullptr;
        c->cancel(r->exchange);
      }
      break;
    default:
      break;
  }
}

void Lifecycle::cancel_timers(Request* r) noexcept {
  if (r->attempt_timer.armed()) wheel_.cancel(r->attempt_timer);
  if (r->stream) stream_.cancel_timers(*r);
}

void Lifecycle::timed_out(Request* r, std::string message) noexcept {
  FailureFacts f;
  f.status = BRG_E_TIMEOUT;
  f.phase = r->first_byte_ns ? FailurePhase::response : r->channel ? FailurePhase::send : FailurePhase::connect;
  detach(r);
  fail_attempt(r, f, 0, std::move(message));
}

// ---- events -------------------------------------------------------------------

void Lifecycle::channel_ready(PoolWaiter* w, Channel* c) noexcept { start_exchange(from_waiter(w), c); }

void Lifecycle::waiter_failed(PoolWaiter* w, ExchangeFailure f) noexcept {
  Request* r = from_waiter(w);
  int reported = f.http_status;
  std::string msg = std::move(f.message);
  fail_attempt(r, facts_of(f), reported, std::move(msg));
}

void Lifecycle::on_first_byte(void* user) noexcept { static_cast<Request*>(user)->first_byte_ns = clock_.now_ns(); }

bool Lifecycle::on_body(void* user, const http::Response& resp, std::string_view piece) noexcept {
  auto* r = static_cast<Request*>(user);
  if (!r->stream) return true;
  std::string why = stream_.feed(*r, resp, piece);
  if (why.empty()) return r->stream->body_kept();
  FailureFacts f;
  f.status = BRG_E_TOO_LARGE;
  f.phase = FailurePhase::response;
  detach(r);
  fail_attempt(r, f, resp.status(), std::move(why));
  return true;
}

void Lifecycle::on_complete(void* user, http::Response& resp) noexcept {
  auto* r = static_cast<Request*>(user);
  r->channel = nullptr;
  answered(r, resp);
}

void Lifecycle::on_failure(void* user, ExchangeFailure f) noexcept {
  auto* r = static_cast<Request*>(user);
  r->channel = nullptr;
  int reported = f.http_status;
  std::string msg = std::move(f.message);
  fail_attempt(r, facts_of(f), reported, std::move(msg));
}

void Lifecycle::key_granted(KeyWaiter* w) noexcept {
  Request* r = from_key_waiter(w);
  ++inflight_;  // the key asked slot_free() first
  counters_.in_flight.add();
  r->holds_slot = true;
  start_attempt(r);
  make_ready(r, Request::State::to_dispatch);
}

void Lifecycle::key_rejected(KeyWaiter* w, LimitKey& k) noexcept {
  finish(from_key_waiter(w), BRG_E_UNAVAILABLE, 0, "circuit breaker open for '" + k.name + "' after repeated failures",
         {});
}

void Lifecycle::on_attempt_timer(void* ctx) noexcept {
  auto* r = static_cast<Request*>(ctx);
  Lifecycle* l = r->lifecycle;
  if (r->state == Request::State::backoff) {
    l->take_slot(r);
    return;
  }
  if (r->state == Request::State::rate_wait) {
    uint64_t waited_ms = (l->clock_.now_ns() - r->rate_wait_ns) / 1000000;
    LimitKey& k = *r->key;
    uint64_t now = l->clock_.now_ns();
    std::string why = k.gate.cooling(now)      ? "cooling down after a 429/503"
                      : k.gate.breaker_open(now) ? "circuit breaker open"
                                                 : "rate limit";
    l->finish(r, BRG_E_TIMEOUT, r->last_http,
              "waited " + std::to_string(waited_ms) + " ms for limit key '" + k.name + "' (" + why +
                  ") without being sent (attempt timeout " + std::to_string(r->timeout_ms) + " ms)" +
                  (r->last_error.empty() ? "" : "; last: " + r->last_error),
              std::move(r->last_body));
    return;
  }
  l->timed_out(r, "no response within " + std::to_string(r->timeout_ms) + " ms (attempt timeout)");
}

void Lifecycle::on_deadline_timer(void* ctx) noexcept {
  auto* r = static_cast<Request*>(ctx);
  std::string why = r->group_deadline ? "group deadline of " + std::to_string(r->group->deadline_ms) + " ms exceeded"
                                      : "deadline of " + std::to_string(r->deadline_ms) + " ms exceeded";
  r->lifecycle->finish(r, BRG_E_TIMEOUT, 0, std::move(why), {});
}

void Lifecycle::on_first_token_timer(void* ctx) noexcept {
  auto* r = static_cast<Request*>(ctx);
  r->lifecycle->timed_out(r, "no first token (non-empty delta) within the first-token timeout of " +
                                 std::to_string(r->stream->first_token_timeout_ms) + " ms");
}

void Lifecycle::on_stream_idle_timer(void* ctx) noexcept {
  auto* r = static_cast<Request*>(ctx);
  r->lifecycle->timed_out(r, "no server-sent event within the stream idle timeout of " +
                                 std::to_string(r->stream->idle_timeout_ms) + " ms");
}

}  // namespace barrage
