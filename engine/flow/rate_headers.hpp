// Parsers for the x-ratelimit-* headers OpenAI-style APIs send with every
// answer, so a key's buckets can follow what the server actually allows.
#pragma once

#include <cstdint>
#include <string_view>

namespace barrage {

// OpenAI reset durations (Go time.Duration syntax): "1s", "6m0s", "20ms",
// "1h2m3.5s", "0.5s", "250us" -> ns, truncated; "0" -> 0. -1 if malformed,
// empty, negative or beyond INT64_MAX ns. A bare number other than 0 is
// malformed: some APIs send epoch seconds there, which is no duration.
int64_t parse_reset_duration_ns(std::string_view text) noexcept;

// Integer header value ("59", " 12 ") -> value; -1 if absent or malformed
// (signs, fractions, trailing text, overflow).
int64_t parse_count(std::string_view text) noexcept;

}  // namespace barrage
