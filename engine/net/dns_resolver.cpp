// The c-ares channel driven by the reactor. Every call into c-ares is
// bracketed by enter()/leave(); leave() at the outermost level frees the
// socket watches c-ares dropped, re-arms the one timer from ares_timeout()
// and only then tells waiters their answers, so no user callback ever runs
// inside c-ares and callbacks may start new lookups.
#include "net/dns_resolver.hpp"

#include <ares.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <utility>

#include "loop/clock.hpp"
#include "net/address_order.hpp"

namespace barrage {

// A query for one host (lower-case key), shared by every waiter that asks
// for it while it is in flight.
struct DnsResolver::Query {
  DnsResolver* owner = nullptr;
  std::string key;
  std::string host;  // as the first caller spelled it, for error messages
  IntrusiveList<DnsCallback> waiters;
  DnsAnswer answer;
  uint64_t ttl_ms = 0;  // how long answer may be cached
  bool finished = false;
};

// One c-ares socket watched by the backend.
class DnsResolver::SocketWatch final : public FdWatcher {
 public:
  SocketWatch(DnsResolver* owner, int fd) : owner_(owner), fd_(fd) {}
  void on_fd_ready(bool readable, bool writable) noexcept override {
    // process() may retire this watch (c-ares closes the socket); nothing
    // here touches it afterwards, and retired watches live until leave().
    owner_->process(readable ? fd_ : ARES_SOCKET_BAD, writable ? fd_ : ARES_SOCKET_BAD);
  }
  FdWatch* watch = nullptr;

 private:
  DnsResolver* owner_;
  int fd_;
};

DnsCallback::~DnsCallback() {
  if (waiting_on_) waiting_on_->remove(hook_);
}

namespace {

std::string lower(const std::string& s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return out;
}

std::string failure(const std::string& host, const char* why) {
  return "cannot resolve '" + host + "': " + why;
}

SockAddr with_port(SockAddr a, uint16_t port) {
  if (a.storage.ss_family == AF_INET)
    reinterpret_cast<sockaddr_in*>(&a.storage)->sin_port = htons(port);
  else if (a.storage.ss_family == AF_INET6)
    reinterpret_cast<sockaddr_in6*>(&a.storage)->sin6_port = htons(port);
  return a;
}

// c-ares 1.18's ares_library_init is a reference count and not thread-safe;
// engines may be created on several threads, so it runs once, here, and
// the library stays initialised for the life of the process.
int library_status() noexcept {
  static const int status = ares_library_init(ARES_LIB_INIT_ALL);
  return status;
}

}  // namespace

DnsResolver::DnsResolver(Backend& backend, TimerWheel& wheel, const DnsOptions& options)
    : backend_(backend), wheel_(wheel), options_(options), cache_(options.max_cache_entries) {
  timer_.fn = &DnsResolver::on_timer;
  timer_.ctx = this;
}

std::unique_ptr<DnsResolver> DnsResolver::create(Backend& backend, TimerWheel& wheel,
                                                 const DnsOptions& options, std::string* err) noexcept {
  try {
    std::unique_ptr<DnsResolver> r(new DnsResolver(backend, wheel, options));
    std::string why = r->init();
    if (!why.empty()) {
      *err = std::move(why);
      return nullptr;
    }
    return r;
  } catch (...) {
    *err = "DNS resolver: out of memory";
    return nullptr;
  }
}

std::string DnsResolver::init() noexcept {
  try {
    if (int rc = library_status(); rc != ARES_SUCCESS)
      return std::string("c-ares cannot start: ") + ares_strerror(rc);
    if (options_.min_ttl_s > options_.max_ttl_s)
      return "DNS options: min_ttl_s (" + std::to_string(options_.min_ttl_s) +
             ") is above max_ttl_s (" + std::to_string(options_.max_ttl_s) + ")";
    if (!options_.hosts_file.empty()) {
      std::string why = hosts_.load(options_.hosts_file);
      if (!why.empty()) return why;
    }

    ares_options o{};
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS;
    o.sock_state_cb = &DnsResolver::on_sock_state;
    o.sock_state_cb_data = this;
    // DNS only: the hosts file was read above, once. c-ares would reopen
    // it on every lookup.
    char lookups[] = "b";
    o.lookups = lookups;
    if (options_.timeout_ms > 0) {
      mask |= ARES_OPT_TIMEOUTMS;
      o.timeout = int(std::min<uint32_t>(options_.timeout_ms, INT32_MAX));
    }
    if (options_.tries > 0) {
      mask |= ARES_OPT_TRIES;
      o.tries = int(std::min<uint32_t>(options_.tries, INT32_MAX));
    }
    if (!options_.servers.empty()) {
      mask |= ARES_OPT_DOMAINS | ARES_OPT_NDOTS;
      o.domains = nullptr;
      o.ndomains = 0;
      o.ndots = 1;
    }
    ares_channel channel = nullptr;
    if (int rc = ares_init_options(&channel, &o, mask); rc != ARES_SUCCESS)
      return std::string("c-ares cannot start: ") + ares_strerror(rc);
    channel_ = channel;
    if (!options_.servers.empty()) {
      if (int rc = ares_set_servers_ports_csv(channel_, options_.servers.c_str()); rc != ARES_SUCCESS)
        return "invalid DNS servers '" + options_.servers + "' (want ip[:port],... with IPv6 as [addr]:port): " +
               ares_strerror(rc);
    }
    return "";
  } catch (...) {
    return "DNS resolver: out of memory";
  }
}

DnsResolver::~DnsResolver() {
  destroying_ = true;
  wheel_.cancel(timer_);
  ++depth_;  // nothing below may dispatch
  // ares_destroy ends every query with ARES_EDESTRUCTION (ignored by
  // on_addrinfo) and reports each socket closed (on_sock_state unwatches).
  if (channel_) ares_destroy(channel_);
  channel_ = nullptr;
  for (auto& [fd, sw] : sockets_)
    if (sw->watch) backend_.unwatch_fd(sw->watch);
  sockets_.clear();
  retired_.clear();
  // Waiters stop waiting without a word; their hooks must not point into
  // the lists freed with the queries.
  for (auto& [key, q] : queries_) {
    while (DnsCallback* cb = q->waiters.pop_front()) cb->waiting_on_ = nullptr;
  }
  queries_.clear();
  finished_.clear();
}

bool DnsResolver::resolve(const std::string& host, uint16_t port, DnsCallback* cb) noexcept {
  cancel(cb);
  try {
    std::vector<SockAddr> addrs;
    if (resolve_without_dns(host, port, addrs)) {
      cb->on_resolved(std::move(addrs), "");
      return true;
    }
    if (host.empty()) {
      cb->on_resolved({}, "cannot resolve '': empty host name");
      return true;
    }
    std::string key = lower(host);
    if (const std::vector<SockAddr>* known = hosts_.find(key)) {
      answer(cb, DnsAnswer{*known, ""}, port);
      return true;
    }
    if (const DnsAnswer* cached = cache_.find(key, monotonic_ms())) {
      // The callback may resolve() again and so change the cache: copy first.
      DnsAnswer a = *cached;
      answer(cb, a, port);
      return true;
    }

    cb->port_ = port;
    if (auto it = queries_.find(key); it != queries_.end()) {
      it->second->waiters.push_back(cb->hook_, cb);
      cb->waiting_on_ = &it->second->waiters;
      return false;
    }
    auto owned = std::make_unique<Query>();
    Query* q = owned.get();
    q->owner = this;
    q->key = key;
    q->host = host;
    // finished_ never holds more than the queries in flight: with room for
    // all of them, on_addrinfo's push_back cannot fail inside c-ares.
    finished_.reserve(queries_.size() + 1);
    queries_.emplace(key, std::move(owned));
    q->waiters.push_back(cb->hook_, cb);
    cb->waiting_on_ = &q->waiters;

    ares_addrinfo_hints hints{};
    hints.ai_family = AF_UNSPEC;  // A and AAAA
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    // Our own order (RFC 8305) replaces c-ares' RFC 6724 sort, which would
    // open and connect a UDP socket per address to learn source addresses.
    hints.ai_flags = ARES_AI_NOSORT;
    enter();
    ares_getaddrinfo(channel_, host.c_str(), nullptr, &hints, &DnsResolver::on_addrinfo, q);
    // c-ares answers some names (malformed ones, .onion) without a query;
    // then q is finished already and leave() tells cb before we return.
    bool at_once = q->finished;
    leave();
    return at_once;
  } catch (...) {
    cancel(cb);
    cb->on_resolved({}, failure(host, "out of memory"));
    return true;
  }
}

void DnsResolver::cancel(DnsCallback* cb) noexcept {
  if (!cb->waiting_on_) return;
  cb->waiting_on_->remove(cb->hook_);
  cb->waiting_on_ = nullptr;
}

void DnsResolver::answer(DnsCallback* cb, const DnsAnswer& a, uint16_t port) noexcept {
  try {
    std::vector<SockAddr> addrs;
    addrs.reserve(a.addrs.size());
    for (const SockAddr& s : a.addrs) addrs.push_back(with_port(s, port));
    cb->on_resolved(std::move(addrs), a.error);
  } catch (...) {
    cb->on_resolved({}, "cannot resolve: out of memory");
  }
}

void DnsResolver::on_addrinfo(void* arg, int status, int /*timeouts*/, ares_addrinfo* res) noexcept {
  auto* q = static_cast<Query*>(arg);
  // Destruction: the destructor frees the query and drops its waiters.
  if (status == ARES_EDESTRUCTION || q->owner->destroying_) {
    if (res) ares_freeaddrinfo(res);
    return;
  }
  DnsResolver* self = q->owner;
  try {
    if (status == ARES_SUCCESS && res) {
      uint64_t ttl_s = UINT64_MAX;
      for (ares_addrinfo_node* n = res->nodes; n; n = n->ai_next) {
        if (n->ai_family != AF_INET && n->ai_family != AF_INET6) continue;
        SockAddr a;
        a.len = socklen_t(std::min<size_t>(n->ai_addrlen, sizeof a.storage));
        std::memcpy(&a.storage, n->ai_addr, a.len);
        q->answer.addrs.push_back(with_port(a, 0));
        ttl_s = std::min<uint64_t>(ttl_s, uint64_t(std::max(n->ai_ttl, 0)));
      }
      // A CNAME in the chain bounds how long the answer holds, too.
      for (ares_addrinfo_cname* c = res->cnames; c; c = c->next)
        ttl_s = std::min<uint64_t>(ttl_s, uint64_t(std::max(c->ttl, 0)));
      if (q->answer.addrs.empty()) {
        q->answer.error = failure(q->host, ares_strerror(ARES_ENODATA));
        q->ttl_ms = uint64_t(self->options_.negative_ttl_s) * 1000;
      } else {
        // c-ares lists the addresses in the order the answers came in, so
        // the first address is of the family that answered first.
        interleave_families(q->answer.addrs);
        ttl_s = std::clamp<uint64_t>(ttl_s, self->options_.min_ttl_s, self->options_.max_ttl_s);
        q->ttl_ms = ttl_s * 1000;
      }
    } else {
      q->answer.error = failure(q->host, ares_strerror(status));
      q->ttl_ms = uint64_t(self->options_.negative_ttl_s) * 1000;
    }
  } catch (...) {
    q->answer = DnsAnswer{{}, failure(q->host, "out of memory")};
    q->ttl_ms = 0;
  }
  if (res) ares_freeaddrinfo(res);
  q->finished = true;
  self->finished_.push_back(q);  // capacity reserved in resolve()
}

void DnsResolver::on_sock_state(void* arg, int fd, int readable, int writable) noexcept {
  auto* self = static_cast<DnsResolver*>(arg);
  auto it = self->sockets_.find(fd);
  if (!readable && !writable) {
    // c-ares closes fd right after this returns: forget it first.
    if (it == self->sockets_.end()) return;
    if (it->second->watch) self->backend_.unwatch_fd(it->second->watch);
    it->second->watch = nullptr;
    try {
      self->retired_.push_back(std::move(it->second));
    } catch (...) {
      // Out of memory: leak this watch rather than free it under a running callback.
      (void)it->second.release();
    }
    self->sockets_.erase(it);
    return;
  }
  if (it != self->sockets_.end()) {
    if (it->second->watch) self->backend_.set_fd_interest(it->second->watch, readable, writable);
    return;
  }
  try {
    auto sw = std::make_unique<SocketWatch>(self, fd);
    // If the backend cannot watch the socket, its queries end in c-ares'
    // own timeout rather than hang: the timer still runs.
    sw->watch = self->backend_.watch_fd(fd, sw.get(), readable, writable);
    self->sockets_.emplace(fd, std::move(sw));
  } catch (...) {
  }
}

void DnsResolver::on_timer(void* arg) noexcept {
  static_cast<DnsResolver*>(arg)->process(ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

void DnsResolver::process(int read_fd, int write_fd) noexcept {
  enter();
  // With both fds ARES_SOCKET_BAD this only processes timeouts.
  ares_process_fd(channel_, read_fd, write_fd);
  leave();
}

void DnsResolver::leave() noexcept {
  if (--depth_ > 0) return;
  retired_.clear();
  rearm_timer();
  dispatch_finished();
}

void DnsResolver::rearm_timer() noexcept {
  timeval tv{};
  timeval* next = ares_timeout(channel_, nullptr, &tv);
  if (!next) {
    wheel_.cancel(timer_);  // nothing in flight
    return;
  }
  // Rounded up, plus 1 ms because monotonic_ms() truncates: firing before
  // c-ares' deadline would only make it compute the same deadline again.
  uint64_t ms = uint64_t(next->tv_sec) * 1000 + (uint64_t(next->tv_usec) + 999) / 1000 + 1;
  wheel_.arm(timer_, monotonic_ms() + ms);
}

void DnsResolver::dispatch_finished() noexcept {
  // One at a time from the front: a callback may resolve() again, which
  // can append to finished_ and dispatch nested.
  while (!finished_.empty()) {
    Query* raw = finished_.front();
    finished_.erase(finished_.begin());
    auto it = queries_.find(raw->key);
    std::unique_ptr<Query> q = std::move(it->second);
    queries_.erase(it);
    try {
      if (q->ttl_ms > 0) cache_.put(q->key, q->answer, monotonic_ms() + q->ttl_ms);
    } catch (...) {
      // Not cached: the next resolve() asks again.
    }
    // Callbacks may cancel other waiters of q (they leave q->waiters) or
    // resolve() the same host again (now a cache hit or a new query).
    while (DnsCallback* cb = q->waiters.pop_front()) {
      cb->waiting_on_ = nullptr;
      answer(cb, q->answer, cb->port_);
    }
  }
}

}  // namespace barrage
