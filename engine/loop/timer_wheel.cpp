// Hierarchical timer wheel: placement, cascading and firing. See
// timer_wheel.hpp for the contract.
//
// A timer with expiry e >= cur_ sits at level L = the highest 6-bit group in
// which e and cur_ differ (0 if equal), in slot (e >> 6L) & 63. Placement uses
// absolute time bits, so every timer at level L expires after every timer at a
// lower level and occupied slots never wrap. Invariant: every occupied slot
// above level 0 starts strictly after cur_. It holds because set_cur()
// cascades the slots that start at the new cur_ as soon as cur_ moves there,
// before anyone can arm relative to it; cascading lazily (when the tick is
// processed) would let a timer armed meanwhile land at level 0 ahead of an
// uncascaded earlier one, and next_wake() would skip the cascade.
#include "loop/timer_wheel.hpp"

#include <bit>
#include <climits>

namespace barrage {
namespace {

bool list_empty(const Timer& head) noexcept { return head.next_ == &head; }

void list_init(Timer& head) noexcept { head.prev_ = head.next_ = &head; }

void list_push_back(Timer& head, Timer& t) noexcept {
  t.prev_ = head.prev_;
  t.next_ = &head;
  head.prev_->next_ = &t;
  head.prev_ = &t;
}

// Moves every node of src to the tail of dst, leaving src empty.
void list_append(Timer& dst, Timer& src) noexcept {
  if (list_empty(src)) return;
  src.next_->prev_ = dst.prev_;
  dst.prev_->next_ = src.next_;
  src.prev_->next_ = &dst;
  dst.prev_ = src.prev_;
  list_init(src);
}

}  // namespace

TimerWheel::TimerWheel(uint64_t now_ms) noexcept : cur_(now_ms) {
  list_init(overdue_);
  for (Timer& head : slots_) list_init(head);
}

TimerWheel::~TimerWheel() {
  auto release = [](Timer& head) noexcept {
    for (Timer* t = head.next_; t != &head;) {
      Timer* next = t->next_;
      t->prev_ = t->next_ = nullptr;
      t = next;
    }
    list_init(head);
  };
  release(overdue_);
  for (Timer& head : slots_) release(head);
}

void TimerWheel::place(Timer& t) noexcept {
  const uint64_t e = t.expiry_;
  if (e < cur_) {
    overdue_min_ = list_empty(overdue_) ? e : (e < overdue_min_ ? e : overdue_min_);
    list_push_back(overdue_, t);
    return;
  }
  const uint64_t diff = e ^ cur_;
  const unsigned level = diff == 0 ? 0 : static_cast<unsigned>(std::bit_width(diff) - 1) / kBits;
  const unsigned idx = static_cast<unsigned>(e >> (kBits * level)) & (kSlots - 1);
  list_push_back(slot(level, idx), t);
  occupied_[level] |= uint64_t{1} << idx;
}

void TimerWheel::unlink(Timer& t) noexcept {
  Timer* prev = t.prev_;
  Timer* next = t.next_;
  prev->next_ = next;
  next->prev_ = prev;
  t.prev_ = t.next_ = nullptr;
  if (prev != next) return;
  // The list is now only its sentinel; if that is a wheel slot, clear its bit.
  // Compared as integers because prev may be the overdue list or a local list.
  const auto p = reinterpret_cast<uintptr_t>(prev);
  const auto base = reinterpret_cast<uintptr_t>(slots_.data());
  if (p - base < sizeof(slots_)) {
    const size_t i = (p - base) / sizeof(Timer);
    occupied_[i / kSlots] &= ~(uint64_t{1} << (i % kSlots));
  }
}

void TimerWheel::arm(Timer& t, uint64_t expiry_ms) noexcept {
  if (t.armed())
    unlink(t);
  else
    ++size_;
  t.expiry_ = expiry_ms;
  place(t);
}

void TimerWheel::cancel(Timer& t) noexcept {
  if (!t.armed()) return;
  unlink(t);
  --size_;
}

void TimerWheel::set_cur(uint64_t tick) noexcept {
  cur_ = tick;
  // Slots that start at tick exist only at levels whose lower bits of tick
  // are all zero. Each moves strictly down and never into another slot that
  // starts at tick, so one pass suffices.
  unsigned top = static_cast<unsigned>(std::countr_zero(tick)) / kBits;
  if (top > kLevels - 1) top = kLevels - 1;
  for (unsigned level = top; level >= 1; --level) {
    const unsigned idx = static_cast<unsigned>(tick >> (kBits * level)) & (kSlots - 1);
    const uint64_t bit = uint64_t{1} << idx;
    if (!(occupied_[level] & bit)) continue;
    Timer& head = slot(level, idx);
    while (!list_empty(head)) {
      Timer& t = *head.next_;
      head.next_ = t.next_;
      t.next_->prev_ = &head;
      place(t);
    }
    occupied_[level] &= ~bit;
  }
}

uint64_t TimerWheel::next_wheel_tick() const noexcept {
  for (unsigned level = 0; level < kLevels; ++level) {
    const uint64_t bits = occupied_[level];
    if (bits == 0) continue;
    const unsigned shift = kBits * level;
    const unsigned hi = shift + kBits;
    const uint64_t base = hi >= 64 ? 0 : (cur_ >> hi) << hi;
    return base | (static_cast<uint64_t>(std::countr_zero(bits)) << shift);
  }
  return UINT64_MAX;
}

size_t TimerWheel::fire_all(Timer& due) noexcept {
  size_t n = 0;
  while (!list_empty(due)) {
    Timer& t = *due.next_;
    unlink(t);
    --size_;
    ++n;
    if (t.fn) t.fn(t.ctx);
  }
  return n;
}

size_t TimerWheel::advance(uint64_t now_ms) noexcept {
  // Keeps cur_ = now + 1 representable.
  const uint64_t now = now_ms == UINT64_MAX ? UINT64_MAX - 1 : now_ms;
  size_t fired = 0;
  // Overdue timers armed since the last tick processed are due whatever now
  // is, and before anything on the wheel (all of which is >= cur_).
  // Overdue timers armed by their callbacks wait for the loop below.
  if (!list_empty(overdue_)) {
    Timer due;
    list_init(due);
    list_append(due, overdue_);
    fired += fire_all(due);
  }
  for (;;) {
    const uint64_t tick = list_empty(overdue_) ? next_wheel_tick() : cur_;
    if (tick > now) break;
    if (tick != cur_) {
      set_cur(tick);  // nothing lies between; may cascade timers into tick
      continue;
    }
    Timer due;
    list_init(due);
    list_append(due, overdue_);
    const unsigned idx = static_cast<unsigned>(tick) & (kSlots - 1);
    if (occupied_[0] & (uint64_t{1} << idx)) {
      list_append(due, slot(0, idx));
      occupied_[0] &= ~(uint64_t{1} << idx);
    }
    // Moving on before firing sends timers that callbacks arm for <= tick to
    // tick + 1, so a callback re-arming itself cannot loop forever.
    set_cur(tick + 1);
    fired += fire_all(due);
  }
  // No slot starts at or before now, so no cascade is skipped.
  if (cur_ <= now) set_cur(now + 1);
  return fired;
}

uint64_t TimerWheel::next_wake() const noexcept {
  if (!list_empty(overdue_)) return overdue_min_;
  return next_wheel_tick();
}

int64_t TimerWheel::timeout_ms(uint64_t now_ms) const noexcept {
  if (size_ == 0) return -1;
  const uint64_t wake = next_wake();
  if (wake <= now_ms) return 0;
  const uint64_t d = wake - now_ms;
  return d > static_cast<uint64_t>(INT32_MAX) ? INT32_MAX : static_cast<int64_t>(d);
}

}  // namespace barrage
