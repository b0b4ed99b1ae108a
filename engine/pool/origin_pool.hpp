// The connections of one origin (scheme, host, port): how many are open,
// and the idle ones in LIFO order, so the warmest connection is reused and
// the coldest ones age out on their idle timers.
#pragma once

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
  std::vector<SockAddr> addrs;
  std::string resolve_error;  // non-empty: every request to this origin fails with BRG_E_DNS

  size_t open = 0;  // connecting, ready or busy
  size_t max_open = 1;
  IntrusiveList<Connection> idle;

  bool can_open() const noexcept { return open < max_open; }
  Connection* take_idle() noexcept { return idle.pop_front(); }
  void put_idle(Connection* c) noexcept { idle.push_front(c->hook, c); }
  void forget_idle(Connection* c) noexcept {
    if (c->hook.linked()) idle.remove(c->hook);
  }
};

}  // namespace barrage
