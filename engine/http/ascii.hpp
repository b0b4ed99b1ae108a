// Locale-free ASCII case handling: HTTP names and hosts are ASCII and
// case-insensitive, and <cctype> depends on the process locale.
#pragma once

#include <cstddef>
#include <string_view>

namespace barrage::http {

constexpr char to_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

inline bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  }
  return true;
}

}  // namespace barrage::http
