// Dmitry Vyukov's intrusive multi-producer single-consumer queue: push is
// one atomic exchange from any thread, pop is wait-free for the one
// consumer. It carries submissions into the reactor and results out of it.
#pragma once

#include <atomic>

namespace barrage {

struct MpscNode {
  std::atomic<MpscNode*> mpsc_next{nullptr};
};

class MpscQueue {
 public:
  MpscQueue() noexcept : head_(&stub_), tail_(&stub_) {}
  MpscQueue(const MpscQueue&) = delete;
  MpscQueue& operator=(const MpscQueue&) = delete;

  // Any thread.
  void push(MpscNode* n) noexcept {
    n->mpsc_next.store(nullptr, std::memory_order_relaxed);
    MpscNode* prev = head_.exchange(n, std::memory_order_acq_rel);
    prev->mpsc_next.store(n, std::memory_order_release);
  }

  // Consumer only. nullptr when empty, or when a producer is between its two
  // steps (the element appears on the next pop).
  MpscNode* pop() noexcept {
    MpscNode* tail = tail_;
    MpscNode* next = tail->mpsc_next.load(std::memory_order_acquire);
    if (tail == &stub_) {
      if (!next) return nullptr;
      tail_ = next;
      tail = next;
      next = next->mpsc_next.load(std::memory_order_acquire);
    }
    if (next) {
      tail_ = next;
      return tail;
    }
    if (tail != head_.load(std::memory_order_acquire)) return nullptr;
    push(&stub_);
    next = tail->mpsc_next.load(std::memory_order_acquire);
    if (next) {
      tail_ = next;
      return tail;
    }
    return nullptr;
  }

  // Consumer only; approximate while producers run.
  bool empty() const noexcept {
    return tail_ == &stub_ ? stub_.mpsc_next.load(std::memory_order_acquire) == nullptr : false;
  }

 private:
  alignas(64) std::atomic<MpscNode*> head_;
  alignas(64) MpscNode* tail_;
  MpscNode stub_;
};

}  // namespace barrage
