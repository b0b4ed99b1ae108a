// Retry classification and backoff arithmetic.
#include "flow/retry_policy.hpp"

#include <charconv>

#include "barrage.h"

namespace barrage {

bool is_retryable_http(int s) noexcept {
  return s == 408 || s == 409 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

bool is_retryable_error(int status) noexcept {
  return status == BRG_E_CONNECT || status == BRG_E_IO || status == BRG_E_TIMEOUT;
}

int64_t backoff_delay_ms(const RetryPolicy& p, uint32_t retry, uint64_t random) noexcept {
  if (p.base_ms <= 0 || p.max_ms <= 0) return 0;
  int64_t cap = p.base_ms;
  for (uint32_t i = 1; i < retry && cap < p.max_ms; ++i) cap *= 2;
  if (cap > p.max_ms) cap = p.max_ms;
  return int64_t(random % uint64_t(cap + 1));
}

namespace {
double parse_number(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || !(v >= 0) || v > 1e9) return -1;
  return v;
}
}  // namespace

int64_t retry_after_ms(std::string_view retry_after, std::string_view retry_after_ms) noexcept {
  if (!retry_after_ms.empty()) {
    double ms = parse_number(retry_after_ms);
    if (ms >= 0) return int64_t(ms + 0.999);
  }
  if (!retry_after.empty()) {
    double s = parse_number(retry_after);
    if (s >= 0) return int64_t(s * 1000 + 0.999);
  }
  return -1;
}

}  // namespace barrage
