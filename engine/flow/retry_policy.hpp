// Which failures deserve another attempt, and how long to wait before it:
// exponential backoff with full jitter (AWS architecture blog, "Exponential
// Backoff And Jitter"), never sooner than the server's Retry-After.
#pragma once

#include <cstdint>
#include <string_view>

namespace barrage {

struct RetryPolicy {
  int64_t base_ms = 500;
  int64_t max_ms = 30000;
};

// 408, 409, 429, 500, 502, 503, 504.
bool is_retryable_http(int http_status) noexcept;
// Transport failures that another attempt may cure; certificate failures,
// oversized answers and malformed URLs are not among them.
bool is_retryable_error(int brg_status) noexcept;

// Delay before retry number `retry` (1 = first retry): uniform in
// [0, min(max, base * 2^(retry-1))]. `random` is a uniform 64-bit value.
int64_t backoff_delay_ms(const RetryPolicy& p, uint32_t retry, uint64_t random) noexcept;

// Server-requested wait from `retry-after-ms` (preferred, OpenAI) or
// `Retry-After` in seconds. -1 when absent or not understood.
int64_t retry_after_ms(std::string_view retry_after, std::string_view retry_after_ms) noexcept;

// Small fast PRNG (splitmix64) owned by each engine: no global state.
class Random {
 public:
  explicit Random(uint64_t seed) noexcept : s_(seed) {}
  uint64_t next() noexcept {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

 private:
  uint64_t s_;
};

}  // namespace barrage
