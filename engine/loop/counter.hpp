// A statistic written by the reactor thread only and read from any thread:
// relaxed load+store instead of an atomic add keeps the hot path free of
// locked instructions.
#pragma once

#include <atomic>
#include <cstdint>

namespace barrage {

struct Counter {
  std::atomic<uint64_t> v{0};
  void add(uint64_t n = 1) noexcept { v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void sub(uint64_t n = 1) noexcept { v.store(v.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
  uint64_t get() const noexcept { return v.load(std::memory_order_relaxed); }
};

}  // namespace barrage
