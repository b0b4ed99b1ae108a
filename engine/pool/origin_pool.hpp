// The connections of one origin (scheme, host, port): how many are open,
// the idle HTTP/1.1 ones in LIFO order, so the warmest connection is reused
// and the coldest ones age out on their idle timers, and the HTTP/2 ones,
// each carrying many requests.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "loop/intrusive_list.hpp"
#include "net/resolver.hpp"
#include "pool/connection.hpp"

namespace barrage {

struct OriginPool {
  std::string key;   // "https://host:port"
  std::string host;
  uint16_t port = 0;
  bool tls = true;
  bool host_is_ip = false;
  bool via_proxy = false;  // connections CONNECT through the engine's proxy; addrs are the proxy's
  std::vector<SockAddr> addrs;  // RFC 8305 order; tried in turn when a connect fails
  std::string resolve_error;    // the resolver's message while no address is known

  size_t open = 0;     // connecting, ready or busy
  size_t opening = 0;  // of those, still connecting or handshaking
  size_t max_open = 1;
  IntrusiveList<Connection> idle;

  // Which protocol the origin speaks: unknown until a first handshake ends
  // when h2 may be negotiated. While unknown, requests wait for that one
  // connection rather than each opening a connection HTTP/2 would not need.
  enum class Protocol { unknown, h1, h2 } protocol = Protocol::unknown;
  std::vector<Connection*> multiplexed;  // ready HTTP/2 connections
  uint32_t streams_per_conn = 100;       // the server's latest SETTINGS_MAX_CONCURRENT_STREAMS

  Connection* take_stream_slot() const noexcept {
    for (Connection* c : multiplexed)
      if (c->can_take_stream()) return c;
    return nullptr;
  }
  void forget_multiplexed(Connection* c) noexcept {
    auto it = std::find(multiplexed.begin(), multiplexed.end(), c);
    if (it != multiplexed.end()) multiplexed.erase(it);
  }

  bool can_open() const noexcept { return open < max_open; }
  Connection* take_idle() noexcept { return idle.pop_front(); }
  void put_idle(Connection* c) noexcept { idle.push_front(c->hook, c); }
  void forget_idle(Connection* c) noexcept {
    if (c->hook.linked()) idle.remove(c->hook);
  }
};

}  // namespace barrage
