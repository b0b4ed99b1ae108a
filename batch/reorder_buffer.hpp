// BRG_BATCH_ORDERED: finished lines wait here until every earlier line is
// written. Lines get consecutive sequence numbers as they are started; a
// line may start only while it is fewer than `window` ahead of the oldest
// unwritten one, so at most `window` lines are ever held, and the oldest is
// always running or done: waiting for it cannot deadlock.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <utility>
#include <vector>

namespace barrage {

template <class Entry>
class ReorderBuffer {
 public:
  explicit ReorderBuffer(uint32_t window) : slots_(window ? window : 1), window_(window ? window : 1) {}

  bool can_start(uint64_t seq) const noexcept { return seq < head_ + window_; }

  // Stores the entry for seq, which must be startable and not stored yet.
  void put(uint64_t seq, Entry entry) {
    if (seq < head_ || !can_start(seq)) throw std::logic_error("reorder buffer: sequence number outside the window");
    Slot& s = slots_[seq % window_];
    if (s.full) throw std::logic_error("reorder buffer: sequence number stored twice");
    s.entry = std::move(entry);
    s.full = true;
    ++held_;
  }

  // Swaps the next entry in order into *out if it has arrived; *out's old
  // contents stay in the slot, so strings recycle their capacity.
  bool pop(Entry* out) {
    Slot& s = slots_[head_ % window_];
    if (!s.full) return false;
    std::swap(*out, s.entry);
    s.full = false;
    --held_;
    ++head_;
    return true;
  }

  uint64_t head() const noexcept { return head_; }  // oldest unwritten sequence number
  size_t held() const noexcept { return held_; }

 private:
  struct Slot {
    Entry entry{};
    bool full = false;
  };
  std::vector<Slot> slots_;  // indexed by seq % window
  uint64_t window_;
  uint64_t head_ = 0;
  size_t held_ = 0;
};

}  // namespace barrage
