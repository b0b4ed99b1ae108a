// ConnectionPool: acquire/serve, the open policy, connection lifetimes.
#include "pool/connection_pool.hpp"

#include <sys/resource.h>

#include <cerrno>
#include <cstring>

#include "barrage.h"
#include "net/dns_resolver.hpp"
#include "net/proxy_config.hpp"
#include "pool/free_heap.hpp"
#include "pool/h1_channel.hpp"
#include "pool/h2_channel.hpp"
#include "pool/handshake_gate.hpp"

namespace barrage {

namespace {

ExchangeFailure connect_failure(int status, std::string message) {
  ExchangeFailure f;
  f.status = status;
  f.message = std::move(message);
  f.phase = ExchangePhase::connect;
  return f;
}

}  // namespace

// ---- Connection: routing only -------------------------------------------

void Connection::close(bool abort) noexcept { pool_.close_connection(this, abort, !abort); }

void Connection::on_established() noexcept {
  std::string err;
  int status = 0;
  WireChannel* ch = pool_.make_channel(this, &status, &err);
  if (!ch) {
    transport_.close(true);
    pool_.connection_failed(this, status, std::move(err));
    return;
  }
  channel_.reset(ch);
  pool_.connection_ready(this);  // HTTP/2 too: streams go out with the preface
}

bool Connection::on_plaintext(const char* data, size_t len) noexcept {
  if (!channel_) return false;
  return channel_->on_plaintext(data, len);
}

void Connection::on_peer_closed() noexcept {
  if (channel_) channel_->on_peer_closed();
}

void Connection::on_transport_failed(int status, std::string message) noexcept {
  if (channel_ && state_ == State::ready) channel_->fail_exchanges(status, message);
  pool_.connection_failed(this, status, std::move(message));
}

void Connection::channel_touched() noexcept { pool_.touch(this); }
void Connection::channel_closed(bool abort) noexcept { pool_.close_connection(this, abort, false); }

void OriginPool::on_resolved(std::vector<SockAddr> found, std::string error) noexcept {
  if (!found.empty()) {
    addrs = std::move(found);
    resolve_error.clear();
  } else if (addrs.empty()) {
    resolve_error = std::move(error);
  }  // else a failed refresh: the last good addresses are still the best try
  if (!resolving_inline) pool->mark_dirty(*this);
}

// ---- the pool -----------------------------------------------------------

ConnectionPool::ConnectionPool(const PoolSettings& settings, const TransportEnv& env, TimerWheel& wheel,
                               DnsResolver& dns, const ProxyConfig& proxy, const Clock& clock) noexcept
    : settings_(settings), env_(env), wheel_(wheel), dns_(dns), proxy_(proxy), clock_(clock) {}

ConnectionPool::~ConnectionPool() {
  shutdown();
  free_closed();
  for (auto& [key, o] : origins_) dns_.cancel(o.get());
}

void ConnectionPool::say_goodbye() noexcept {
  for (Connection* c : live_)
    if (c->state_ == Connection::State::ready && c->channel_->multiplexed())
      static_cast<H2Channel*>(c->channel_.get())->say_goodbye();
}

bool ConnectionPool::output_pending() const noexcept {
  for (const Connection* c : live_)
    if (c->state_ != Connection::State::closed && c->transport_.output_pending()) return true;
  return false;
}

void ConnectionPool::shutdown() noexcept {
  stopping_ = true;
  std::vector<Connection*> all(live_.begin(), live_.end());
  for (Connection* c : all) close_connection(c, false, true);
}

OriginPool* ConnectionPool::origin(const http::Url& url) noexcept {
  try {
    std::string key = url.origin();
    auto it = origins_.find(key);
    if (it != origins_.end()) return it->second.get();
    auto o = std::make_unique<OriginPool>();
    o->key = key;
    o->host = url.host;
    o->port = url.port;
    o->tls = url.scheme == http::Scheme::https;
    o->host_is_ip = url.host_is_ip;
    if (!o->tls || settings_.http_version == 1) o->protocol = OriginPool::Protocol::h1;
    if (o->tls && settings_.http_version == 2) o->protocol = OriginPool::Protocol::h2;
    o->max_open = settings_.max_conns_per_host > 0 ? size_t(settings_.max_conns_per_host) : SIZE_MAX;
    // Only https goes through the proxy (HTTPS_PROXY); the proxy resolves the origin's name.
    o->via_proxy = o->tls && proxy_.is_set() && !proxy_.bypass(url.host, url.port);
    o->pool = this;
    OriginPool* raw = o.get();
    origins_.emplace(std::move(key), std::move(o));
    return raw;
  } catch (...) {
    return nullptr;
  }
}

ConnectionPool::Acquired ConnectionPool::acquire(OriginPool& o, PoolWaiter& w, bool fresh) noexcept {
  Acquired a;
  if (!fresh && o.waiting.empty()) {
    if (Channel* c = o.take_stream_slot()) {
      a.channel = c;
      return a;
    }
    if (Connection* c = o.take_idle()) {
      counters_.idle.sub();
      wheel_.cancel(c->timer_);
      a.channel = c->channel();
      return a;
    }
  }
  if (fresh)
    o.waiting.push_front(w.waiter_hook, &w);
  else
    o.waiting.push_back(w.waiter_hook, &w);
  // One connection here, so that a failure to open reaches this request;
  // the rest (HTTP/2's ramp, the waiting list) from serve(), in the turn's budget.
  if (!open_for_waiters(o, &a.failure, TimeBudget(0))) {
    o.waiting.remove(w.waiter_hook);
    a.failed = true;
    return a;
  }
  // Waiters go first, but a channel may be free already (one freed after the
  // older waiters queued): the next flush, before any other request moves,
  // serves the queue rather than the next completion.
  mark_dirty(o);
  return a;
}

void ConnectionPool::withdraw(OriginPool& o, PoolWaiter& w) noexcept {
  if (w.waiter_hook.linked()) o.waiting.remove(w.waiter_hook);
}

// The origin's addresses (the proxy's, when it goes through one) for a new
// connection. The resolver caches by TTL; asking it at most once a second
// per origin keeps that cost off the per-connection path.
ConnectionPool::Addresses ConnectionPool::addresses(OriginPool& o) noexcept {
  constexpr uint64_t kRecheckMs = 1000;
  if (o.dns_waiting()) return Addresses::pending;
  uint64_t now = clock_.now_ms();
  if (!o.addrs.empty() && now - o.resolved_ms < kRecheckMs) return Addresses::ready;
  o.resolved_ms = now;
  o.resolving_inline = true;
  bool known = o.via_proxy ? dns_.resolve(proxy_.host(), proxy_.port(), &o) : dns_.resolve(o.host, o.port, &o);
  o.resolving_inline = false;
  if (!known) return o.addrs.empty() ? Addresses::pending : Addresses::ready;  // refresh in the background
  return o.resolve_error.empty() ? Addresses::ready : Addresses::failed;
}

bool ConnectionPool::open_for_waiters(OriginPool& o, ExchangeFailure* f, const TimeBudget& budget) noexcept {
  for (size_t want = o.connections_wanted(o.waiting.size()); want > 0; --want) {
    switch (addresses(o)) {
      case Addresses::pending: return true;  // the answer marks the origin dirty
      case Addresses::failed: *f = connect_failure(BRG_E_DNS, o.resolve_error); return false;
      case Addresses::ready: break;
    }
    if (!open_connection(o, 0, f)) return false;
    // Each open is a connect (a syscall that sends the SYN) and a TLS
    // object: 500 at once held a turn for ~15 ms. The rest at the next flush.
    if (want > 1 && budget.spent()) {
      mark_dirty(o);
      return true;
    }
  }
  return true;
}

bool ConnectionPool::open_connection(OriginPool& o, size_t addr_index, ExchangeFailure* f) noexcept {
  auto* c = new (std::nothrow) Connection(*this, o, env_);
  int err = ENOMEM;
  Transport::Target t;
  bool made = false;
  if (c) {
    try {
      t.tls = o.tls;
      t.host = o.host;
      t.host_is_ip = o.host_is_ip;
      t.session_key = o.key;
      t.tunnel = o.via_proxy;
      t.port = o.port;
      made = c->open(o.addrs[addr_index], t, addr_index, &err);
    } catch (...) {
      err = ENOMEM;
    }
  }
  if (!made) {
    delete c;
    std::string msg = "cannot open a socket to " + o.addrs[addr_index].to_string() + ": " + std::strerror(err);
    if (err == EMFILE || err == ENFILE) {
      rlimit rl{};
      getrlimit(RLIMIT_NOFILE, &rl);
      msg = "out of file descriptors (" + std::string(err == EMFILE ? "EMFILE" : "ENFILE") + ", limit " +
            std::to_string(rl.rlim_cur) +
            "): lower BRG_OPT_MAX_INFLIGHT / BRG_OPT_MAX_CONNS_PER_HOST or raise the open-files limit";
    }
    *f = connect_failure(BRG_E_CONNECT, std::move(msg));
    f->local = err == EMFILE || err == ENFILE || err == ENOMEM || err == ENOBUFS;
    return false;
  }
  ++o.open;
  ++o.opening;
  counters_.open.add();
  counters_.opened.add();
  live_.insert(c);
  c->timer_.fn = on_connection_timer;
  c->timer_.ctx = c;
  wheel_.arm(c->timer_, clock_.expiry_after(settings_.connect_timeout_ms));
  return true;
}

WireChannel* ConnectionPool::make_channel(Connection* c, int* status, std::string* err) noexcept {
  Transport& t = c->transport_;
  *status = BRG_E_NOMEM;
  if (t.alpn_h2()) {
    http::H2Options o;
    o.max_body_bytes = settings_.limits.max_body_bytes;
    o.max_header_bytes = settings_.limits.max_header_bytes;
    auto* ch = new (std::nothrow) H2Channel(*c, o);
    if (!ch || !ch->init(err)) {
      *err = "HTTP/2 session for " + t.address().to_string() + ": " + (ch ? *err : "out of memory");
      delete ch;
      return nullptr;
    }
    return ch;
  }
  if (t.tls() && settings_.http_version == 2) {
    *status = BRG_E_PROTOCOL;
    *err = t.address().to_string() + " did not agree to HTTP/2 (ALPN) and BRG_OPT_HTTP_VERSION is 2";
    return nullptr;
  }
  auto* ch = new (std::nothrow) H1Channel(*c, settings_.limits);
  if (!ch) *err = "out of memory";
  return ch;
}

void ConnectionPool::connection_ready(Connection* c) noexcept {
  OriginPool& o = c->origin_;
  wheel_.cancel(c->timer_);
  if (c->transport_.tls_resumed()) counters_.tls_resumed.add();
  c->state_ = Connection::State::ready;
  --o.opening;
  if (c->channel_->multiplexed()) {
    o.protocol = OriginPool::Protocol::h2;
    o.streams_per_conn = std::max<uint32_t>(1, c->channel_->capacity());
    o.multiplexed.push_back(c);
  } else {
    o.protocol = OriginPool::Protocol::h1;
  }
  touch(c);
}

void ConnectionPool::touch(Connection* c) noexcept {
  if (!c->touch_hook_.linked() && c->state_ != Connection::State::closed) touched_.push_back(c->touch_hook_, c);
}

void ConnectionPool::mark_dirty(OriginPool& o) noexcept {
  if (!o.dirty_hook.linked()) dirty_.push_back(o.dirty_hook, &o);
}

void ConnectionPool::retire(Connection* c) noexcept {
  OriginPool& o = c->origin_;
  if (c->state_ == Connection::State::opening) --o.opening;
  c->state_ = Connection::State::closed;
  o.forget_multiplexed(c);
  if (o.is_idle(c)) {
    o.forget_idle(c);
    counters_.idle.sub();
  }
  if (c->timer_.armed()) wheel_.cancel(c->timer_);
  if (c->touch_hook_.linked()) touched_.remove(c->touch_hook_);
  if (c->quiet_hook_.linked()) quiet_.remove(c->quiet_hook_);
  --o.open;
  counters_.open.sub();
  live_.erase(c);
  dead_.push_back(c);  // freed by free_closed(): it may be on the call stack
  if (!stopping_) mark_dirty(o);
}

void ConnectionPool::close_connection(Connection* c, bool abort, bool goodbye) noexcept {
  if (c->state_ == Connection::State::closed) return;
  if (goodbye && c->state_ == Connection::State::ready && c->channel_->multiplexed())
    static_cast<H2Channel*>(c->channel_.get())->say_goodbye();
  c->transport_.close(abort);
  retire(c);
}

void ConnectionPool::fail_oldest(OriginPool& o, ExchangeFailure f) noexcept {
  if (PoolWaiter* w = o.waiting.pop_front()) client_->waiter_failed(w, std::move(f));
}

// A transport failed. Exchanges on it were reported by its channel; one
// that never became ready charges the failure to the waiting requests that
// counted on it (OriginPool::waiters_counting_on_failed), after the origin's
// other addresses were tried.
void ConnectionPool::connection_failed(Connection* c, int status, std::string message) noexcept {
  if (c->state_ == Connection::State::closed) return;
  bool was_opening = c->state_ == Connection::State::opening;
  OriginPool& o = c->origin_;
  size_t next_addr = c->addr_index_ + 1;
  retire(c);
  if (!was_opening || stopping_) return;
  if (status == BRG_E_CONNECT && next_addr < o.addrs.size() && !o.waiting.empty()) {
    ExchangeFailure f;
    if (open_connection(o, next_addr, &f)) return;
    fail_counting(o, std::move(f));
    return;
  }
  fail_counting(o, connect_failure(status, std::move(message)));
}

void ConnectionPool::fail_counting(OriginPool& o, ExchangeFailure f) noexcept {
  size_t n = o.waiters_counting_on_failed(o.waiting.size());
  for (size_t i = 0; i < n; ++i) {
    PoolWaiter* w = o.waiting.pop_front();
    if (!w) break;
    client_->waiter_failed(w, i + 1 < n ? f : std::move(f));
  }
}

void ConnectionPool::on_connection_timer(void* ctx) noexcept {
  auto* c = static_cast<Connection*>(ctx);
  ConnectionPool& p = c->pool_;
  if (c->state_ == Connection::State::opening) {
    std::string msg = c->transport_.phase_text() + c->transport_.address().to_string() + " took longer than " +
                      std::to_string(p.settings_.connect_timeout_ms) + " ms";
    c->transport_.close(true);
    p.connection_failed(c, BRG_E_TIMEOUT, std::move(msg));
    return;
  }
  p.close_connection(c, false, true);  // idle too long
}

bool ConnectionPool::flush(const TimeBudget& budget) noexcept {
  bool did = false;
  for (;;) {
    if (did && budget.spent()) return did;
    if (Connection* c = touched_.pop_front()) {
      did = true;
      look_at(c);
      continue;
    }
    if (OriginPool* o = dirty_.pop_front()) {
      did = true;
      serve(*o, budget);
      continue;
    }
    // Handshakes the gate lets through now (their slots were freed in
    // socket events); then look again, a start may have touched its connection.
    if (env_.handshakes && env_.handshakes->start_waiting(budget)) {
      did = true;
      continue;
    }
    return did;
  }
}

bool ConnectionPool::has_work() const noexcept {
  return !touched_.empty() || !dirty_.empty() || !dead_.empty() ||
         (env_.handshakes && env_.handshakes->has_work());
}

// A connection's channel changed (an exchange ended, frames are waiting, it
// became ready): write, then idle, close or offer it.
void ConnectionPool::look_at(Connection* c) noexcept {
  if (c->state_ == Connection::State::closed) return;
  if (c->transport_.report_deferred_failure()) return;
  WireChannel* ch = c->channel_.get();
  if (!ch) return;
  ch->flush();
  if (c->state_ != Connection::State::ready) return;
  if (ch->active() == 0 && !c->quiet_hook_.linked()) quiet_.push_back(c->quiet_hook_, c);
  OriginPool& o = c->origin_;
  if (ch->multiplexed()) {
    o.streams_per_conn = std::max<uint32_t>(1, ch->capacity());
    if (ch->going_away()) {
      if (ch->active() == 0) close_connection(c, false, false);
      return;
    }
    if (ch->active() == 0) {
      if (!c->timer_.armed()) wheel_.arm(c->timer_, clock_.expiry_after(settings_.idle_timeout_ms));
    } else if (c->timer_.armed()) {
      wheel_.cancel(c->timer_);
    }
  } else if (ch->can_take() && !o.is_idle(c)) {
    o.put_idle(c);
    counters_.idle.add();
    wheel_.arm(c->timer_, clock_.expiry_after(settings_.idle_timeout_ms));
  }
  mark_dirty(o);
}

// Channels to waiting requests, oldest first; then connections for the rest.
void ConnectionPool::serve(OriginPool& o, const TimeBudget& budget) noexcept {
  while (!o.waiting.empty()) {
    Channel* ch = o.take_stream_slot();
    if (!ch) {
      Connection* c = o.take_idle();
      if (!c) break;
      counters_.idle.sub();
      wheel_.cancel(c->timer_);
      ch = c->channel();
    }
    client_->channel_ready(o.waiting.pop_front(), ch);
  }
  if (o.waiting.empty()) return;
  if (!o.resolve_error.empty() && o.addrs.empty() && !o.dns_waiting()) {
    if (o.open > 0) return;  // connections already opening still serve the waiting list
    while (PoolWaiter* w = o.waiting.pop_front()) client_->waiter_failed(w, connect_failure(BRG_E_DNS, o.resolve_error));
    return;
  }
  ExchangeFailure f;
  while (!o.waiting.empty() && !open_for_waiters(o, &f, budget)) {
    bool dns = f.status == BRG_E_DNS;
    fail_oldest(o, std::move(f));
    f = ExchangeFailure{};
    if (dns && o.open == 0) {
      while (PoolWaiter* w = o.waiting.pop_front()) client_->waiter_failed(w, connect_failure(BRG_E_DNS, o.resolve_error));
      return;
    }
  }
}

void ConnectionPool::free_closed(const TimeBudget& budget) noexcept {
  while (Connection* c = quiet_.pop_front())
    if (c->channel_ && c->channel_->active() == 0) c->transport_.release_buffers();
  if (env_.handshakes && env_.handshakes->burst_ended()) heap_to_give_back_ = true;
  // A close costs a syscall that sends the FIN and the TLS state's free:
  // ~80 us each through a tunnel device, so 300 at once took 23 ms.
  size_t freed = 0;
  while (freed < dead_.size()) {
    delete dead_[freed++];
    if (budget.spent()) break;
  }
  dead_.erase(dead_.begin(), dead_.begin() + ptrdiff_t(freed));
}

void ConnectionPool::give_back_heap() noexcept {
  heap_to_give_back_ = false;
  give_back_free_heap();
}

}  // namespace barrage
