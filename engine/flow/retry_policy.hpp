// Which failures deserve another attempt, and how long to wait before it:
// exponential backoff with full jitter (AWS architecture blog, "Exponential
// Backoff And Jitter"), never sooner than the server's Retry-After.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace barrage {

struct RetryPolicy {
  int64_t base_ms = 500;
  int64_t max_ms = 30000;
};

// 408, 409, 429, 500, 502, 503, 504: the default of StatusSet.
bool is_retryable_http(int http_status) noexcept;

// The HTTP statuses worth another attempt, configurable per engine. A bitset
// over 100..599, so asking costs one load and a mask.
class StatusSet {
 public:
  StatusSet() noexcept;  // the default set: 408, 409, 429, 500, 502, 503, 504

  // "429,500-504,408" -> "" or an error message naming the bad part; the set
  // is unchanged on error. Spaces around items are allowed. "" restores the
  // default set (as the engine's config documents), "none" empties it.
  std::string parse(std::string_view spec);
  bool contains(int status) const noexcept {
    if (status < kFirst || status > kLast) return false;
    const unsigned i = unsigned(status - kFirst);
    return (bits_[i / 64] >> (i % 64)) & 1;
  }

 private:
  static constexpr int kFirst = 100;
  static constexpr int kLast = 599;
  void add(int status) noexcept {
    const unsigned i = unsigned(status - kFirst);
    bits_[i / 64] |= uint64_t{1} << (i % 64);
  }

  uint64_t bits_[(kLast - kFirst) / 64 + 1] = {};
};

// Transport failures that another attempt may cure; certificate failures,
// oversized answers and malformed URLs are not among them.
bool is_retryable_error(int brg_status) noexcept;

// Delay before retry number `retry` (1 = first retry): uniform in
// [0, min(max, base * 2^(retry-1))]. `random` is a uniform 64-bit value.
int64_t backoff_delay_ms(const RetryPolicy& p, uint32_t retry, uint64_t random) noexcept;

// Server-requested wait from `retry-after-ms` (preferred, OpenAI) or
// `Retry-After`, either in seconds or as an HTTP-date (RFC 9110 §5.6.7:
// IMF-fixdate, RFC 850 or asctime form), which is measured from
// now_unix_ms (wall-clock ms since 1970); a date in the past gives 0.
// -1 when absent or not understood, and for a date when now_unix_ms < 0.
int64_t retry_after_ms(std::string_view retry_after, std::string_view retry_after_ms,
                       int64_t now_unix_ms) noexcept;

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
