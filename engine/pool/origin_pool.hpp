// The connections of one origin (scheme, host, port): its addresses, the
// requests waiting for a channel, the idle HTTP/1.1 connections in LIFO
// order (the warmest is reused, the coldest age out on their idle timers),
// the HTTP/2 ones, each carrying many requests, and the policy of how many
// connections to open for the requests waiting.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "loop/intrusive_list.hpp"
#include "net/dns_resolver.hpp"
#include "net/resolver.hpp"
#include "pool/connection.hpp"

namespace barrage {

class ConnectionPool;

// A request waiting for a channel of its origin; embedded in the caller's request.
struct PoolWaiter {
  ListHook<PoolWaiter> waiter_hook;
};

struct OriginPool final : DnsCallback {
  std::string key;  // "https://host:port"
  std::string host;
  uint16_t port = 0;
  bool tls = true;
  bool host_is_ip = false;
  bool via_proxy = false;       // connections CONNECT through the engine's proxy; addrs are the proxy's
  std::vector<SockAddr> addrs;  // RFC 8305 order; tried in turn when a connect fails
  std::string resolve_error;    // the resolver's message while no address is known
  uint64_t resolved_ms = 0;     // when addrs were last (re)confirmed
  bool resolving_inline = false;  // inside DnsResolver::resolve(): the caller handles the answer

  size_t open = 0;     // opening or ready
  size_t opening = 0;  // of those, still connecting, handshaking or awaiting SETTINGS
  size_t max_open = SIZE_MAX;
  IntrusiveList<Connection> idle;
  IntrusiveList<PoolWaiter> waiting;  // FIFO; a fresh-connection retry goes first

  // Which protocol the origin speaks: unknown until a first handshake ends
  // when h2 may be negotiated (h2 from the start when BRG_OPT_HTTP_VERSION
  // forces it). While unknown, connections open as HTTP/2 would need them,
  // not one per request.
  enum class Protocol { unknown, h1, h2 } protocol = Protocol::unknown;
  std::vector<Connection*> multiplexed;  // ready HTTP/2 connections
  // The server's latest SETTINGS_MAX_CONCURRENT_STREAMS; until one arrived,
  // the 100 RFC 9113 (5.1.2) asks servers to allow at least.
  uint32_t streams_per_conn = 100;

  ConnectionPool* pool = nullptr;
  ListHook<OriginPool> dirty_hook;  // queued for the pool's flush

  // How many connections to start now for `waiters` requests waiting: one
  // per waiting request over HTTP/1.1; over HTTP/2, and while the protocol
  // is unknown, only what the connections already opening cannot carry.
  // Unknown opens what HTTP/2 would need at once rather than one probe: a far
  // server's HTTP/2 ramp then takes the three round trips one connection
  // does (TCP, TLS, SETTINGS), not six; an HTTP/1.1 server gets the rest of
  // its connections when the first handshake says so, as before.
  size_t connections_wanted(size_t waiters) const noexcept {
    size_t room = open < max_open ? max_open - open : 0;
    size_t carried = protocol == Protocol::h1 ? opening : opening * size_t(streams_per_conn);
    size_t per_conn = protocol == Protocol::h1 ? 1 : streams_per_conn;
    size_t want = waiters > carried ? (waiters - carried + per_conn - 1) / per_conn : 0;
    return std::min(want, room);
  }

  // A connection that was opening failed: how many waiting requests were
  // counting on it. With nothing established, every waiter the connections
  // still opening cannot carry (all of them when none is): they fail
  // together, one connect timeout per attempt, instead of one after another. With connections
  // established, only the oldest: the others are served as streams free up.
  size_t waiters_counting_on_failed(size_t waiters) const noexcept {
    if (waiters == 0) return 0;
    if (open > opening) return 1;
    size_t carried = protocol == Protocol::h1 ? opening : opening * size_t(streams_per_conn);
    return waiters > carried ? waiters - carried : 1;
  }

  Channel* take_stream_slot() const noexcept {
    for (Connection* c : multiplexed)
      if (c->channel()->can_take()) return c->channel();
    return nullptr;
  }
  void forget_multiplexed(Connection* c) noexcept {
    auto it = std::find(multiplexed.begin(), multiplexed.end(), c);
    if (it != multiplexed.end()) multiplexed.erase(it);
  }
  bool can_open() const noexcept { return open < max_open; }
  Connection* take_idle() noexcept { return idle.pop_front(); }
  void put_idle(Connection* c) noexcept { idle.push_front(c->idle_hook_, c); }
  void forget_idle(Connection* c) noexcept {
    if (c->idle_hook_.linked()) idle.remove(c->idle_hook_);
  }
  bool is_idle(const Connection* c) const noexcept { return c->idle_hook_.linked(); }

  void on_resolved(std::vector<SockAddr> addrs, std::string error) noexcept override;
};

}  // namespace barrage
