// Address resolution that never blocks the reactor. This slice resolves IP
// literals and "localhost" (RFC 6761: always loopback, no DNS query); other
// names need the c-ares resolver of the protocol-completeness work and fail
// with a clear BRG_E_DNS until then.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

namespace barrage {

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;
  const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
  std::string to_string() const;
};

// "" and out filled (IPv4 before IPv6), or why the host cannot be resolved.
std::string resolve_without_dns(const std::string& host, uint16_t port, std::vector<SockAddr>& out);

}  // namespace barrage
