// Doubly-linked intrusive list: O(1) unlink from the middle, which the
// request queues need when a request is cancelled or times out while waiting.
#pragma once

#include <cstddef>

namespace barrage {

template <class T>
struct ListHook {
  ListHook* prev = nullptr;
  ListHook* next = nullptr;
  T* owner = nullptr;
  bool linked() const noexcept { return prev != nullptr; }
};

template <class T>
class IntrusiveList {
 public:
  IntrusiveList() noexcept { head_.prev = head_.next = &head_; }
  IntrusiveList(const IntrusiveList&) = delete;
  IntrusiveList& operator=(const IntrusiveList&) = delete;

  bool empty() const noexcept { return head_.next == &head_; }
  size_t size() const noexcept { return size_; }

  void push_back(ListHook<T>& h, T* owner) noexcept { insert(h, owner, head_.prev); }
  void push_front(ListHook<T>& h, T* owner) noexcept { insert(h, owner, &head_); }

  T* front() const noexcept { return empty() ? nullptr : head_.next->owner; }
  T* pop_front() noexcept {
    if (empty()) return nullptr;
    ListHook<T>* h = head_.next;
    remove(*h);
    return h->owner;
  }
  // f may unlink the element it is given, but no other.
  template <class F>
  void for_each(F&& f) const {
    for (ListHook<T>* h = head_.next; h != &head_;) {
      ListHook<T>* next = h->next;
      f(h->owner);
      h = next;
    }
  }

  // h must be linked into this list (callers track which list holds it).
  void remove(ListHook<T>& h) noexcept {
    h.prev->next = h.next;
    h.next->prev = h.prev;
    h.prev = h.next = nullptr;
    --size_;
  }

 private:
  void insert(ListHook<T>& h, T* owner, ListHook<T>* after) noexcept {
    h.owner = owner;
    h.prev = after;
    h.next = after->next;
    after->next->prev = &h;
    after->next = &h;
    ++size_;
  }
  ListHook<T> head_;
  size_t size_ = 0;
};

}  // namespace barrage
