// x-ratelimit-* values and Retry-After: results are -1 or within their
// documented range whatever the text (no overflow, UBSan watching); counts
// agree with a plain reference parser; reset durations add up when two valid
// ones are written one after the other ("1m" + "30s" = "1m30s").
#include <charconv>
#include <cstring>
#include <string>

#include "flow/rate_headers.hpp"
#include "flow/retry_policy.hpp"
#include "fuzz_util.hpp"

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Digits only, fits in int64, else -1.
int64_t reference_count(std::string_view text) {
  const std::string_view s = trim(text);
  if (s.empty()) return -1;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, c - '0', &v)) return -1;
  }
  return v;
}

void check_duration_sum(std::string_view x, std::string_view y) {
  if (x != trim(x) || y != trim(y) || y == "0" || x.empty() || y.empty()) return;
  const int64_t dx = barrage::parse_reset_duration_ns(x), dy = barrage::parse_reset_duration_ns(y);
  if (dx < 0 || dy < 0) return;
  const std::string xy = std::string(x) + std::string(y);
  const int64_t dxy = barrage::parse_reset_duration_ns(xy);
  int64_t sum = 0;
  if (__builtin_add_overflow(dx, dy, &sum)) {
    FUZZ_CHECK(dxy == -1);
  } else {
    FUZZ_CHECK(dxy == sum);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  const uint8_t mode = in.byte();
  int64_t now = 0;
  for (int i = 0; i < 8; ++i) now = int64_t(uint64_t(now) << 8 | in.byte());
  // Mostly a plausible wall clock (2020..2090); sometimes any int64.
  if (!(mode & 1)) now = 1577836800000 + int64_t(uint64_t(now) % (70ull * 365 * 86400000));
  const std::string_view a = in.until('\n');
  const std::string_view b = in.rest();

  for (std::string_view t : {a, b}) {
    const int64_t c = barrage::parse_count(t);
    FUZZ_CHECK(c == reference_count(t));
    const int64_t d = barrage::parse_reset_duration_ns(t);
    FUZZ_CHECK(d >= -1);
  }
  check_duration_sum(a, b);

  // retry-after-ms wins when it parses; the seconds form and dates stop at
  // 1e9 s / 1e12 ms ("the same horizon").
  const int64_t r = barrage::retry_after_ms(a, b, now);
  FUZZ_CHECK(r >= -1 && r <= int64_t(1e12) + 1);
  const int64_t only_a = barrage::retry_after_ms(a, {}, now);
  FUZZ_CHECK(only_a >= -1 && only_a <= int64_t(1e12) + 1);
  const int64_t only_b = barrage::retry_after_ms({}, b, now);
  FUZZ_CHECK(only_b >= -1 && only_b <= int64_t(1e9) + 1);
  if (only_b >= 0) FUZZ_CHECK(r == only_b);
  if (only_b == -1) FUZZ_CHECK(r == only_a);
  // Whole seconds are exact: n s -> n * 1000 ms.
  const int64_t secs = reference_count(a);
  if (secs >= 0 && secs <= 1000000000) FUZZ_CHECK(only_a == secs * 1000);
  return 0;
}
