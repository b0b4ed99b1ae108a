// Monotonic time for the reactor: one clock, read in ns and cut down to the
// ms ticks of the timer wheel and the µs of result timings.
#pragma once
#include <cstdint>

namespace barrage {

uint64_t monotonic_ns() noexcept;
inline uint64_t monotonic_us() noexcept { return monotonic_ns() / 1000; }
inline uint64_t monotonic_ms() noexcept { return monotonic_ns() / 1000000; }

}  // namespace barrage
