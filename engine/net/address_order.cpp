// RFC 8305 §4 interleaving of resolved addresses.
#include "net/address_order.hpp"

#include <sys/socket.h>

#include <utility>

namespace barrage {

void interleave_families(std::vector<SockAddr>& addrs) {
  if (addrs.size() < 3) {
    // Two addresses of different families are already interleaved; of the
    // same family, already in order.
    return;
  }
  const int first = addrs.front().storage.ss_family;
  const int second = first == AF_INET ? AF_INET6 : AF_INET;
  std::vector<SockAddr> a, b, rest;
  for (SockAddr& s : addrs) {
    int f = s.storage.ss_family;
    (f == first ? a : f == second ? b : rest).push_back(std::move(s));
  }
  addrs.clear();
  for (size_t i = 0; i < a.size() || i < b.size(); ++i) {
    if (i < a.size()) addrs.push_back(std::move(a[i]));
    if (i < b.size()) addrs.push_back(std::move(b[i]));
  }
  for (SockAddr& s : rest) addrs.push_back(std::move(s));
}

}  // namespace barrage
