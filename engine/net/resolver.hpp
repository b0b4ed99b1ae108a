// Socket addresses, and the names that resolve without any lookup: IP
// literals and "localhost" (RFC 6761: always loopback, no DNS query). Every
// other name goes to DnsResolver (c-ares on the reactor).
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

// true and out filled (IPv4 before IPv6) for an IP literal or a localhost
// name; false (out empty) for a name that needs DNS.
bool resolve_without_dns(const std::string& host, uint16_t port, std::vector<SockAddr>& out);

}  // namespace barrage
