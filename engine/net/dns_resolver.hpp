// Asynchronous DNS on the engine's own reactor: one c-ares channel whose
// sockets the Backend watches (watch_fd) and whose timeouts are one timer
// on the TimerWheel, so a lookup never blocks the loop thread. Answers are
// cached per host name for their TTL (clamped), failures briefly; lookups
// of a host already in flight join it. Loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "loop/backend.hpp"
#include "loop/intrusive_list.hpp"
#include "loop/timer_wheel.hpp"
#include "net/dns_cache.hpp"
#include "net/hosts_file.hpp"
#include "net/resolver.hpp"

// c-ares' types; ares.h stays out of this header.
struct ares_channeldata;
struct ares_addrinfo;

namespace barrage {

struct DnsOptions {
  // "" = the system's configuration (/etc/resolv.conf: servers, search
  // list, ndots, timeout, attempts). Else "ip[:port],..." with IPv6 as
  // [addr]:port; explicit servers make the resolver self-contained: no
  // search list, ndots 1, whatever resolv.conf says.
  std::string servers;
  uint32_t min_ttl_s = 1;       // answers are cached at least this long...
  uint32_t max_ttl_s = 300;     // ...and at most this long, whatever their TTL
  uint32_t negative_ttl_s = 5;  // failures (NXDOMAIN, timeout, ...) are cached this long
  size_t max_cache_entries = 4096;  // 0 = no cache (in-flight lookups are still shared)
  uint32_t timeout_ms = 0;  // per attempt, before c-ares' back-off; 0 = resolv.conf or 5000
  uint32_t tries = 0;       // attempts per server; 0 = resolv.conf or 4
  std::string hosts_file = "/etc/hosts";  // read once at creation; "" = none
};

// Receives one resolve() answer. Waits for at most one resolve() at a time.
class DnsCallback {
 public:
  // Success: addrs non-empty (with the port given to resolve(), families
  // interleaved per RFC 8305 §4, first family that of the first answer)
  // and error "". Failure: addrs empty and error says why, naming the host,
  // e.g. "cannot resolve 'foo.test': Domain name not found".
  virtual void on_resolved(std::vector<SockAddr> addrs, std::string error) noexcept = 0;
  // True between a resolve() that returned false and the callback (or cancel).
  bool dns_waiting() const noexcept { return hook_.linked(); }

 protected:
  DnsCallback() = default;
  DnsCallback(const DnsCallback&) = delete;
  DnsCallback& operator=(const DnsCallback&) = delete;
  // Stops waiting, as DnsResolver::cancel() does: an object that goes away
  // is never called, even if its owner forgot to cancel.
  ~DnsCallback();

 private:
  friend class DnsResolver;
  ListHook<DnsCallback> hook_;
  IntrusiveList<DnsCallback>* waiting_on_ = nullptr;  // the list hook_ is linked into
  uint16_t port_ = 0;
};

class DnsResolver {
 public:
  // nullptr with *err set when c-ares cannot start or options.servers does
  // not parse. Reads resolv.conf and the hosts file now: blocking file
  // reads, acceptable once, at engine creation; no lookup reads a file.
  // backend and wheel must outlive the resolver.
  static std::unique_ptr<DnsResolver> create(Backend& backend, TimerWheel& wheel,
                                             const DnsOptions& options, std::string* err) noexcept;
  // Must not be called from inside a DnsCallback. Calls no callback: queries
  // in flight are abandoned and their waiters simply stop waiting.
  ~DnsResolver();
  DnsResolver(const DnsResolver&) = delete;
  DnsResolver& operator=(const DnsResolver&) = delete;

  // Resolves host for port. Returns true when the answer is known at once
  // (an IP literal, "localhost" or "*.localhost" per RFC 6761, a hosts-file
  // name, or a cached answer or failure): cb->on_resolved() has then already
  // run, inside this call. Returns false when a DNS query is under way (new,
  // or one in flight for the same host): cb->on_resolved() follows from
  // Backend::wait() or TimerWheel::advance(), unless cancel(cb) comes first.
  // If cb is still waiting for an earlier resolve(), that one is cancelled.
  // Callbacks may call resolve() and cancel() again.
  bool resolve(const std::string& host, uint16_t port, DnsCallback* cb) noexcept;
  // cb is not called for its pending resolve(), if any. O(1).
  void cancel(DnsCallback* cb) noexcept;

  size_t queries_in_flight() const noexcept { return queries_.size(); }  // distinct hosts
  size_t cache_size() const noexcept { return cache_.size(); }

 private:
  struct Query;
  class SocketWatch;

  DnsResolver(Backend& backend, TimerWheel& wheel, const DnsOptions& options);
  std::string init() noexcept;

  static void on_sock_state(void* self, int fd, int readable, int writable) noexcept;
  static void on_addrinfo(void* query, int status, int timeouts, ares_addrinfo* res) noexcept;
  static void on_timer(void* self) noexcept;

  void process(int read_fd, int write_fd) noexcept;
  void enter() noexcept { ++depth_; }
  void leave() noexcept;
  void rearm_timer() noexcept;
  void dispatch_finished() noexcept;
  void answer(DnsCallback* cb, const DnsAnswer& a, uint16_t port) noexcept;

  Backend& backend_;
  TimerWheel& wheel_;
  DnsOptions options_;
  ares_channeldata* channel_ = nullptr;
  Timer timer_;
  DnsCache cache_;
  HostsFile hosts_;
  std::unordered_map<std::string, std::unique_ptr<Query>> queries_;  // by lower-case host
  std::vector<Query*> finished_;  // answered by c-ares, waiters not yet told
  std::unordered_map<int, std::unique_ptr<SocketWatch>> sockets_;  // c-ares' sockets, by fd
  std::vector<std::unique_ptr<SocketWatch>> retired_;  // unwatched inside a c-ares call
  int depth_ = 0;  // nesting of calls into c-ares
  bool destroying_ = false;
};

}  // namespace barrage
