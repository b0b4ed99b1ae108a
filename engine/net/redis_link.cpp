// RedisLink: hiredis's async context on the backend's fd watches.
#include "net/redis_link.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <algorithm>
#include <charconv>
#include <cstring>

namespace barrage {

namespace {

// A failed link pauses this long before the next command connects again,
// so a dead Redis costs one refused connect per pause, not one per command.
constexpr uint64_t kReconnectPauseMs = 200;

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool percent_decode(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int h = hex(in[i + 1]), l = hex(in[i + 2]);
    if (h < 0 || l < 0) return false;
    out->push_back(char(h * 16 + l));
    i += 2;
  }
  return true;
}

RedisReply convert(const redisReply* r, const std::string& link_error) {
  RedisReply out;
  if (!r) {
    out.error = link_error.empty() ? "the Redis link closed" : link_error;
    return out;
  }
  switch (r->type) {
    case REDIS_REPLY_ERROR:
      out.error.assign(r->str, r->len);
      return out;
    case REDIS_REPLY_INTEGER:
      out.ints.push_back(r->integer);
      break;
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_STRING:
      out.text.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ARRAY:
      for (size_t i = 0; i < r->elements; ++i) {
        const redisReply* e = r->element[i];
        if (e->type == REDIS_REPLY_INTEGER) {
          out.ints.push_back(e->integer);
        } else if (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS) {
          out.strings.emplace_back(e->str, e->len);
        } else {
          out.error = "unexpected reply element from Redis";
          return out;
        }
      }
      break;
    default:
      break;
  }
  out.ok = true;
  return out;
}

}  // namespace

std::string parse_redis_url(const std::string& url, RedisEndpoint* out) {
  RedisEndpoint ep;
  std::string_view s = url;
  if (s.starts_with("rediss://")) {
    return "rediss:// (Redis over TLS) needs hiredis 1.0 or later built with TLS; the installed hiredis " +
           std::to_string(HIREDIS_MAJOR) + "." + std::to_string(HIREDIS_MINOR) +
           " has none: use redis:// on a trusted network or a TLS tunnel";
  }
  if (!s.starts_with("redis://")) return "expected redis://[user:password@]host:port[/db]";
  s.remove_prefix(8);
  size_t slash = s.find('/');
  std::string_view auth_host = s.substr(0, slash);
  std::string_view db = slash == std::string_view::npos ? std::string_view() : s.substr(slash + 1);
  size_t at = auth_host.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = auth_host.substr(0, at);
    size_t colon = userinfo.find(':');
    std::string_view user = colon == std::string_view::npos ? std::string_view() : userinfo.substr(0, colon);
    std::string_view pass = colon == std::string_view::npos ? userinfo : userinfo.substr(colon + 1);
    if (!percent_decode(user, &ep.user) || !percent_decode(pass, &ep.password))
      return "bad %-escape in the Redis URL's credentials";
    auth_host.remove_prefix(at + 1);
  }
  std::string_view host = auth_host, port;
  if (host.starts_with('[')) {
    size_t close = host.find(']');
    if (close == std::string_view::npos) return "unclosed [ in the Redis URL's host";
    port = host.substr(close + 1);
    host = host.substr(1, close - 1);
    if (!port.empty() && port.front() != ':') return "expected :port after ] in the Redis URL";
    if (!port.empty()) port.remove_prefix(1);
  } else {
    size_t colon = host.rfind(':');
    if (colon != std::string_view::npos) {
      port = host.substr(colon + 1);
      host = host.substr(0, colon);
    }
  }
  if (host.empty()) return "the Redis URL has no host";
  ep.host = std::string(host);
  if (!port.empty()) {
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535)
      return "bad port in the Redis URL";
    ep.port = uint16_t(p);
  }
  if (!db.empty()) {
    int64_t d = 0;
    auto [end, ec] = std::from_chars(db.data(), db.data() + db.size(), d);
    if (ec != std::errc() || end != db.data() + db.size() || d < 0 || d > 1000000)
      return "bad database number in the Redis URL";
    ep.db = d;
  }
  *out = std::move(ep);
  return "";
}

RedisProbe probe_redis(RedisEndpoint* ep, int64_t timeout_ms, const std::string& script) {
  RedisProbe pr;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(ep->host.c_str(), nullptr, &hints, &res) != 0 || !res) {
    pr.error = "cannot resolve the Redis host '" + ep->host + "'";
    return pr;
  }
  char ip[NI_MAXHOST];
  int rc = getnameinfo(res->ai_addr, res->ai_addrlen, ip, sizeof ip, nullptr, 0, NI_NUMERICHOST);
  freeaddrinfo(res);
  if (rc != 0) {
    pr.error = "cannot resolve the Redis host '" + ep->host + "'";
    return pr;
  }
  ep->host = ip;
  timeval tv{time_t(timeout_ms / 1000), suseconds_t(timeout_ms % 1000 * 1000)};
  redisContext* c = redisConnectWithTimeout(ep->host.c_str(), ep->port, tv);
  if (!c || c->err) {
    if (c) redisFree(c);
    return pr;  // refused or silent: the caller falls back and retries later
  }
  redisSetTimeout(c, tv);
  auto run = [&](std::vector<std::string> argv, redisReply** out) -> bool {
    std::vector<const char*> a;
    std::vector<size_t> l;
    for (auto& s : argv) {
      a.push_back(s.data());
      l.push_back(s.size());
    }
    *out = static_cast<redisReply*>(redisCommandArgv(c, int(a.size()), a.data(), l.data()));
    return *out != nullptr;
  };
  redisReply* r = nullptr;
  auto check = [&](const char* what) -> bool {
    if (!r) {
      if (c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ETIMEDOUT)) {
        return false;  // silent: unreachable, not wrong
      }
      pr.reachable = true;
      pr.error = std::string("the server at the Redis URL is not Redis (") + what + ": " + c->errstr + ")";
      return false;
    }
    if (r->type == REDIS_REPLY_ERROR) {
      pr.reachable = true;
      pr.error = std::string("Redis refused ") + what + ": " + std::string(r->str, r->len);
      return false;
    }
    return true;
  };
  bool ok = true;
  if (!ep->password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!ep->user.empty()) auth.push_back(ep->user);
    auth.push_back(ep->password);
    ok = run(auth, &r), ok = check("the credentials");
    if (r) freeReplyObject(r), r = nullptr;
  }
  if (ok && ep->db != 0) {
    run({"SELECT", std::to_string(ep->db)}, &r);
    ok = check("the database number");
    if (r) freeReplyObject(r), r = nullptr;
  }
  if (ok) {
    run({"PING"}, &r);
    ok = check("PING");
    if (ok && (r->type != REDIS_REPLY_STATUS || std::string(r->str, r->len) != "PONG")) {
      pr.reachable = true;
      pr.error = "the server at the Redis URL is not Redis (PING got no PONG)";
      ok = false;
    }
    if (r) freeReplyObject(r), r = nullptr;
  }
  if (ok) {
    run({"SCRIPT", "LOAD", script}, &r);
    ok = check("SCRIPT LOAD");
    if (ok && r->type == REDIS_REPLY_STRING) {
      pr.reachable = true;
      pr.script_sha.assign(r->str, r->len);
    } else if (ok) {
      pr.reachable = true;
      pr.error = "the server at the Redis URL is not Redis (SCRIPT LOAD gave no hash)";
    }
    if (r) freeReplyObject(r), r = nullptr;
  }
  redisFree(c);
  return pr;
}

struct RedisLink::Pending {
  RedisLink* link;
  Callback cb;
  bool persistent = false;  // a subscription: called for every message
  bool confirmed = false;
};

RedisLink::RedisLink(Backend& backend, TimerWheel& wheel, const Clock& clock, RedisEndpoint ep,
                     int64_t timeout_ms)
    : backend_(backend), wheel_(wheel), clock_(clock), ep_(std::move(ep)), timeout_ms_(timeout_ms) {
  timer_.fn = on_timer;
  timer_.ctx = this;
  fail_timer_.fn = on_fail_timer;
  fail_timer_.ctx = this;
}

RedisLink::~RedisLink() {
  if (ctx_) fail("the engine is closing");
  wheel_.cancel(timer_);
  wheel_.cancel(fail_timer_);
  for (auto& [cb, why] : refused_) {
    RedisReply r;
    r.error = why;
    cb(r);
  }
}

bool RedisLink::open() {
  redisAsyncContext* c = redisAsyncConnect(ep_.host.c_str(), ep_.port);
  if (!c) {
    last_error_ = "cannot create a Redis connection";
    return false;
  }
  if (c->err) {
    last_error_ = std::string("Redis connect: ") + c->errstr;
    redisAsyncFree(c);
    return false;
  }
  watch_ = backend_.watch_fd(c->c.fd, this, false, false);
  if (!watch_) {
    last_error_ = "cannot watch the Redis connection";
    redisAsyncFree(c);
    return false;
  }
  ctx_ = c;
  c->data = this;
  c->ev.data = this;
  c->ev.addRead = ev_add_read;
  c->ev.delRead = ev_del_read;
  c->ev.addWrite = ev_add_write;
  c->ev.delWrite = ev_del_write;
  c->ev.cleanup = ev_cleanup;
  redisAsyncSetConnectCallback(c, on_connect);
  redisAsyncSetDisconnectCallback(c, on_disconnect);
  want_read_ = want_write_ = up_ = false;
  // Credentials and database go first on every connection; a refusal fails the link.
  auto must_succeed = [this](const RedisReply& r) {
    if (!r.ok && ctx_) fail("Redis refused the connection's setup: " + r.error);
  };
  if (!ep_.password.empty()) {
    std::vector<std::string> auth = {"AUTH"};
    if (!ep_.user.empty()) auth.push_back(ep_.user);
    auth.push_back(ep_.password);
    send(auth, new Pending{this, must_succeed});
  }
  if (ep_.db != 0) send({"SELECT", std::to_string(ep_.db)}, new Pending{this, must_succeed});
  return ctx_ != nullptr;
}

void RedisLink::command(const std::vector<std::string>& argv, Callback cb) {
  if (!ctx_) {
    if (clock_.now_ms() < retry_at_ms_ || !open()) {
      refused_.emplace_back(std::move(cb), last_error_.empty() ? "Redis is unreachable" : last_error_);
      if (!fail_timer_.armed()) wheel_.arm(fail_timer_, clock_.now_ms());
      return;
    }
  }
  send(argv, new Pending{this, std::move(cb)});
}

void RedisLink::eval(const std::string& script, const std::string& sha, const std::vector<std::string>& keys_args,
                     Callback cb) {
  std::vector<std::string> argv = {sha.empty() ? "EVAL" : "EVALSHA", sha.empty() ? script : sha};
  argv.insert(argv.end(), keys_args.begin(), keys_args.end());
  command(argv, [this, script, keys_args, cb = std::move(cb)](const RedisReply& r) mutable {
    if (!r.ok && r.error.starts_with("NOSCRIPT")) {
      std::vector<std::string> again = {"EVAL", script};
      again.insert(again.end(), keys_args.begin(), keys_args.end());
      command(again, std::move(cb));
      return;
    }
    cb(r);
  });
}

void RedisLink::psubscribe(const std::string& pattern, Callback cb) {
  if (!ctx_ && (clock_.now_ms() < retry_at_ms_ || !open())) {
    refused_.emplace_back(std::move(cb), last_error_.empty() ? "Redis is unreachable" : last_error_);
    if (!fail_timer_.armed()) wheel_.arm(fail_timer_, clock_.now_ms());
    return;
  }
  auto* p = new Pending{this, std::move(cb)};
  p->persistent = true;
  send({"PSUBSCRIBE", pattern}, p);
}

void RedisLink::send(const std::vector<std::string>& argv, Pending* p) {
  std::vector<const char*> a;
  std::vector<size_t> l;
  a.reserve(argv.size());
  for (const auto& s : argv) {
    a.push_back(s.data());
    l.push_back(s.size());
  }
  if (!ctx_ || redisAsyncCommandArgv(ctx_, on_reply, p, int(a.size()), a.data(), l.data()) != REDIS_OK) {
    refused_.emplace_back(std::move(p->cb), "the Redis link is closing");
    delete p;
    if (!fail_timer_.armed()) wheel_.arm(fail_timer_, clock_.now_ms());
    return;
  }
  deadlines_.push_back(clock_.expiry_after(timeout_ms_));
  arm();
}

void RedisLink::arm() {
  if (deadlines_.empty()) {
    wheel_.cancel(timer_);
  } else if (!timer_.armed() || timer_.expiry() != deadlines_.front()) {
    wheel_.arm(timer_, deadlines_.front());
  }
}

void RedisLink::on_reply(redisAsyncContext*, void* reply, void* privdata) {
  auto* p = static_cast<Pending*>(privdata);
  RedisLink* self = p->link;
  if (reply && !p->confirmed) {
    self->round_trips_.add();
    if (!self->deadlines_.empty()) self->deadlines_.pop_front();
    self->arm();
  }
  RedisReply r = convert(static_cast<redisReply*>(reply), self->last_error_);
  if (p->persistent && reply) {
    p->confirmed = true;
    p->cb(r);  // the subscription goes on
    return;
  }
  Callback cb = std::move(p->cb);
  delete p;
  cb(r);
}

void RedisLink::on_connect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisLink*>(ac->data);
  if (status == REDIS_OK) {
    self->up_ = true;
    self->last_error_.clear();
    return;
  }
  // hiredis frees the context itself after this returns.
  self->last_error_ = std::string("Redis connect: ") + (ac->errstr ? ac->errstr : "failed");
  self->ctx_ = nullptr;
  self->up_ = false;
  self->deadlines_.clear();
  self->arm();
  self->retry_at_ms_ = self->clock_.now_ms() + kReconnectPauseMs;
}

void RedisLink::on_disconnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisLink*>(ac->data);
  if (status != REDIS_OK && self->last_error_.empty())
    self->last_error_ = std::string("Redis link lost: ") + (ac->errstr ? ac->errstr : "closed");
  const bool was_up = self->up_;
  if (self->ctx_ == ac) {
    self->ctx_ = nullptr;
    self->retry_at_ms_ = self->clock_.now_ms() + kReconnectPauseMs;
  }
  self->up_ = false;
  if (was_up && self->on_down_) self->on_down_();
  self->deadlines_.clear();
  self->arm();
}

void RedisLink::fail(const std::string& why) {
  const bool was_up = up_;
  last_error_ = why;
  redisAsyncContext* c = ctx_;
  ctx_ = nullptr;
  up_ = false;
  deadlines_.clear();
  arm();
  retry_at_ms_ = clock_.now_ms() + kReconnectPauseMs;
  if (was_up && on_down_) on_down_();
  // Pending commands hear of it now (reply NULL); inside a hiredis callback
  // the free happens when that callback returns.
  if (c) {
    c->onDisconnect = nullptr;
    redisAsyncFree(c);
  }
}

void RedisLink::on_timer(void* p) noexcept {
  auto* self = static_cast<RedisLink*>(p);
  if (self->deadlines_.empty()) return;
  if (self->deadlines_.front() > self->clock_.now_ms()) {
    self->arm();
    return;
  }
  // A host that did not poll for a while (inline mode) may have left the
  // command unwritten, or its answer unread: timers run before I/O in a
  // turn. Neither is Redis's delay: write (and count from now), read first.
  if (self->ctx_ && self->want_write_) {
    redisAsyncHandleWrite(self->ctx_);
    const uint64_t from_now = self->clock_.expiry_after(self->timeout_ms_);
    for (uint64_t& d : self->deadlines_) d = std::max(d, from_now);
    self->arm();
    return;
  }
  if (self->ctx_) {
    pollfd pfd{self->ctx_->c.fd, POLLIN, 0};
    if (::poll(&pfd, 1, 0) == 1) {
      redisAsyncHandleRead(self->ctx_);
      if (self->deadlines_.empty() || self->deadlines_.front() > self->clock_.now_ms()) {
        self->arm();
        return;
      }
    }
  }
  self->fail("Redis did not answer within " + std::to_string(self->timeout_ms_) + " ms");
}

void RedisLink::on_fail_timer(void* p) noexcept {
  auto* self = static_cast<RedisLink*>(p);
  auto refused = std::move(self->refused_);
  self->refused_.clear();
  for (auto& [cb, why] : refused) {
    RedisReply r;
    r.error = why;
    cb(r);
  }
}

void RedisLink::on_fd_ready(bool readable, bool writable) noexcept {
  if (ctx_ && readable && want_read_) redisAsyncHandleRead(ctx_);
  if (ctx_ && writable && want_write_) redisAsyncHandleWrite(ctx_);
}

void RedisLink::update_interest() {
  if (watch_) backend_.set_fd_interest(watch_, want_read_, want_write_);
}

void RedisLink::ev_add_read(void* p) {
  auto* self = static_cast<RedisLink*>(p);
  self->want_read_ = true;
  self->update_interest();
}
void RedisLink::ev_del_read(void* p) {
  auto* self = static_cast<RedisLink*>(p);
  self->want_read_ = false;
  self->update_interest();
}
void RedisLink::ev_add_write(void* p) {
  auto* self = static_cast<RedisLink*>(p);
  self->want_write_ = true;
  self->update_interest();
}
void RedisLink::ev_del_write(void* p) {
  auto* self = static_cast<RedisLink*>(p);
  self->want_write_ = false;
  self->update_interest();
}
void RedisLink::ev_cleanup(void* p) {
  auto* self = static_cast<RedisLink*>(p);
  if (self->watch_) self->backend_.unwatch_fd(self->watch_);
  self->watch_ = nullptr;
  self->want_read_ = self->want_write_ = false;
}

}  // namespace barrage
