// Counts requests per x-mock-fail-key so that the first N of them fail and the
// rest succeed ("429 then success" across a client's retries). Shared by the
// worker threads; a mutex is enough at mock rates.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace barrage::mock {

class FailCounter {
 public:
  // True while fewer than `times` requests with this key have been seen
  // (this one included in the count).
  bool should_fail(std::string_view key, uint64_t times) {
    std::lock_guard<std::mutex> lock(mu_);
    // Bounded memory: a client that invents keys forever resets the table
    // rather than growing the mock without limit.
    if (seen_.size() >= kMaxKeys && seen_.find(std::string(key)) == seen_.end()) seen_.clear();
    uint64_t& n = seen_[std::string(key)];
    return n++ < times;
  }

 private:
  static constexpr size_t kMaxKeys = 1 << 16;
  std::mutex mu_;
  std::unordered_map<std::string, uint64_t> seen_;
};

}  // namespace barrage::mock
