// TTL-bounded, size-bounded cache of DNS answers.
#include "net/dns_cache.hpp"

#include <utility>

namespace barrage {

const DnsAnswer* DnsCache::find(const std::string& key, uint64_t now_ms) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return nullptr;
  if (now_ms >= it->second.expires_ms) {
    erase(it);
    return nullptr;
  }
  return &it->second.answer;
}

void DnsCache::put(const std::string& key, DnsAnswer answer, uint64_t expires_ms) {
  if (max_entries_ == 0) return;
  if (auto it = entries_.find(key); it != entries_.end()) erase(it);
  // Oldest insertion first: O(1), and an answer evicted early costs no more
  // than one extra query.
  while (entries_.size() >= max_entries_) erase(entries_.find(by_age_.front()));
  by_age_.push_back(key);
  Entry e;
  e.answer = std::move(answer);
  e.expires_ms = expires_ms;
  e.age = std::prev(by_age_.end());
  entries_.emplace(key, std::move(e));
}

void DnsCache::erase(std::unordered_map<std::string, Entry>::iterator it) {
  by_age_.erase(it->second.age);
  entries_.erase(it);
}

}  // namespace barrage
