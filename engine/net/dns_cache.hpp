// Answers of finished DNS lookups, per host name, until their TTL runs out.
// Bounded: when full, the entry inserted longest ago goes first. Loop
// thread only; time is the caller's monotonic ms.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>
#include <vector>

#include "net/resolver.hpp"

namespace barrage {

// A lookup's outcome without a port: addresses (port 0) or an error.
struct DnsAnswer {
  std::vector<SockAddr> addrs;
  std::string error;  // "" on success
};

class DnsCache {
 public:
  explicit DnsCache(size_t max_entries) : max_entries_(max_entries) {}

  // The live answer for key, or nullptr (an expired entry is dropped here).
  const DnsAnswer* find(const std::string& key, uint64_t now_ms);
  // Inserts or replaces; a no-op when the cache holds no entries at all.
  void put(const std::string& key, DnsAnswer answer, uint64_t expires_ms);
  size_t size() const noexcept { return entries_.size(); }

 private:
  struct Entry {
    DnsAnswer answer;
    uint64_t expires_ms = 0;
    std::list<std::string>::iterator age;  // position in by_age_
  };
  void erase(std::unordered_map<std::string, Entry>::iterator it);

  size_t max_entries_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> by_age_;  // keys, oldest insertion first
};

}  // namespace barrage
