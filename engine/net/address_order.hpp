// Connection-attempt order for a resolved name: the address families
// interleaved as RFC 8305 §4 (Happy Eyeballs v2) asks, so a broken IPv6 or
// IPv4 path costs one attempt, not all of them.
#pragma once

#include <vector>

#include "net/resolver.hpp"

namespace barrage {

// Reorders addrs in place: the family of the first address first, then
// alternating with the other family while both last; order within a family
// is kept. Addresses of any other family go last.
void interleave_families(std::vector<SockAddr>& addrs);

}  // namespace barrage
