// Header value parsing for rate-limit feedback. Integer arithmetic only, so
// "0.1s" is exactly 100000000 ns and no locale or float rounding applies.
#include "flow/rate_headers.hpp"

#include <charconv>

namespace barrage {
namespace {

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// Length of the unit at the front of s and its size in ns; 0 if none.
size_t read_unit(std::string_view s, int64_t* unit_ns) noexcept {
  struct Unit {
    std::string_view name;
    int64_t ns;
  };
  // Two-letter units first, so "ms" is not read as minutes followed by "s".
  static constexpr Unit kUnits[] = {
      {"ns", 1},          {"us", 1000},          {"\xC2\xB5s", 1000}, {"\xCE\xBCs", 1000},
      {"ms", 1000000},    {"s", 1000000000},     {"m", 60000000000},  {"h", 3600000000000},
  };
  for (const Unit& u : kUnits) {
    if (s.substr(0, u.name.size()) == u.name) {
      *unit_ns = u.ns;
      return u.name.size();
    }
  }
  return 0;
}

}  // namespace

int64_t parse_reset_duration_ns(std::string_view text) noexcept {
  std::string_view s = trim(text);
  if (s.empty()) return -1;
  if (s == "0") return 0;
  __extension__ typedef unsigned __int128 Wide;
  Wide total = 0;
  while (!s.empty()) {
    // One "<digits>[.<digits>]<unit>" group; 128 bits hold any int64 product.
    Wide whole = 0;
    size_t i = 0;
    for (; i < s.size() && is_digit(s[i]); ++i) {
      whole = whole * 10 + unsigned(s[i] - '0');
      if (whole > Wide(INT64_MAX)) return -1;
    }
    const size_t whole_digits = i;
    Wide frac = 0, scale = 1;
    size_t frac_digits = 0;
    if (i < s.size() && s[i] == '.') {
      for (++i; i < s.size() && is_digit(s[i]); ++i, ++frac_digits) {
        // Digits past ns resolution (at most 1e-9 h = 3.6 µs) change nothing.
        if (scale < Wide(1000000000000000000ull)) {
          frac = frac * 10 + unsigned(s[i] - '0');
          scale *= 10;
        }
      }
    }
    if (whole_digits == 0 && frac_digits == 0) return -1;
    int64_t unit_ns = 0;
    const size_t unit_len = read_unit(s.substr(i), &unit_ns);
    if (unit_len == 0) return -1;
    total += whole * Wide(unit_ns) + frac * Wide(unit_ns) / scale;
    if (total > Wide(INT64_MAX)) return -1;
    s.remove_prefix(i + unit_len);
  }
  return int64_t(total);
}

int64_t parse_count(std::string_view text) noexcept {
  const std::string_view s = trim(text);
  if (s.empty() || !is_digit(s.front())) return -1;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return -1;
  return v;
}

}  // namespace barrage
