// Literal and localhost resolution, done inline because it needs no I/O.
#include "net/resolver.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace barrage {

namespace {
SockAddr v4(const in_addr& a, uint16_t port) {
  SockAddr s;
  auto* sin = reinterpret_cast<sockaddr_in*>(&s.storage);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  sin->sin_addr = a;
  s.len = sizeof(sockaddr_in);
  return s;
}
SockAddr v6(const in6_addr& a, uint16_t port) {
  SockAddr s;
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&s.storage);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  sin6->sin6_addr = a;
  s.len = sizeof(sockaddr_in6);
  return s;
}
}  // namespace

std::string SockAddr::to_string() const {
  char buf[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (storage.ss_family == AF_INET) {
    auto* sin = reinterpret_cast<const sockaddr_in*>(&storage);
    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
    port = ntohs(sin->sin_port);
    return std::string(buf) + ":" + std::to_string(port);
  }
  auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&storage);
  inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
  port = ntohs(sin6->sin6_port);
  return "[" + std::string(buf) + "]:" + std::to_string(port);
}

bool resolve_without_dns(const std::string& host, uint16_t port, std::vector<SockAddr>& out) {
  out.clear();
  in_addr a4;
  in6_addr a6;
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) {
    out.push_back(v4(a4, port));
    return true;
  }
  if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    out.push_back(v6(a6, port));
    return true;
  }
  if (host == "localhost" || (host.size() > 10 && host.ends_with(".localhost"))) {
    a4.s_addr = htonl(INADDR_LOOPBACK);
    out.push_back(v4(a4, port));
    out.push_back(v6(in6addr_loopback, port));
    return true;
  }
  return false;
}

}  // namespace barrage
