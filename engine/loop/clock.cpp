// CLOCK_MONOTONIC: immune to wall-clock steps, which deadlines must be.
#include "loop/clock.hpp"

#include <time.h>

namespace barrage {

uint64_t monotonic_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

}  // namespace barrage
