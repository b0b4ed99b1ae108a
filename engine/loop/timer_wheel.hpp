// The reactor's deadlines: a hierarchical hashed timer wheel (after h2o's
// lib/common/timerwheel.c) with 1 ms ticks, O(1) arm and cancel, intrusive
// timers and no allocation after construction. Loop thread only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace barrage {

// Intrusive timer: embedded in the object that owns the deadline; never
// allocated by the wheel.
struct Timer {
  using Fn = void (*)(void* ctx);
  Fn fn = nullptr;  // called when the timer expires (after it is unlinked; it may re-arm itself)
  void* ctx = nullptr;
  // --- owned by TimerWheel ---
  Timer* prev_ = nullptr;
  Timer* next_ = nullptr;
  uint64_t expiry_ = 0;
  bool armed() const noexcept { return prev_ != nullptr; }
  uint64_t expiry() const noexcept { return expiry_; }
};

// Time is in ms on any monotonic scale. An expiry of UINT64_MAX never fires
// (advance() treats now = UINT64_MAX as UINT64_MAX - 1), so it can mean
// "no deadline". Callbacks may arm and cancel any timer, themselves
// included, but must not call advance() or destroy the wheel.
class TimerWheel {
 public:
  explicit TimerWheel(uint64_t now_ms) noexcept;
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;
  ~TimerWheel();  // unlinks any timers still armed (does not call them)

  // O(1); re-arms if already armed. An expiry already processed (in the past)
  // fires at the next advance(), whatever its now_ms.
  void arm(Timer& t, uint64_t expiry_ms) noexcept;
  void cancel(Timer& t) noexcept;  // O(1); no-op if not armed
  // Fires every timer with expiry <= now_ms, in expiry order across slots
  // (same-ms order unspecified; timers armed in the past count as due at the
  // tick after the last one processed). Returns how many fired.
  size_t advance(uint64_t now_ms) noexcept;
  // Earliest instant advance() has work (UINT64_MAX if none). Never later than
  // the earliest expiry; may be earlier (a cascade point).
  uint64_t next_wake() const noexcept;
  // -1 if empty, else max(0, next_wake() - now_ms), clamped to INT32_MAX.
  int64_t timeout_ms(uint64_t now_ms) const noexcept;
  size_t size() const noexcept { return size_; }  // armed timers

 private:
  static constexpr unsigned kBits = 6;
  static constexpr unsigned kSlots = 1u << kBits;
  static constexpr unsigned kLevels = (64 + kBits - 1) / kBits;  // 11: covers all of uint64

  Timer& slot(unsigned level, unsigned idx) noexcept { return slots_[level * kSlots + idx]; }
  void place(Timer& t) noexcept;
  void unlink(Timer& t) noexcept;
  void set_cur(uint64_t tick) noexcept;
  uint64_t next_wheel_tick() const noexcept;
  size_t fire_all(Timer& due) noexcept;

  uint64_t cur_;  // the next tick not yet processed
  size_t size_ = 0;
  uint64_t overdue_min_ = UINT64_MAX;  // lower bound of the expiries in overdue_
  std::array<uint64_t, kLevels> occupied_{};  // bit i of level L: slot i is non-empty
  // Timers armed with an expiry before cur_. Kept apart from the slot of
  // cur_ so that advance() with the same now_ms still fires them.
  Timer overdue_;
  // Sentinel heads of circular lists, level-major; a flat array so that an
  // unlink can tell from the sentinel's address which bit to clear.
  std::array<Timer, kLevels * kSlots> slots_;
};

}  // namespace barrage
