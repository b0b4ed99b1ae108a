// Request groups: members, and one deadline shared by all of them. A
// request's effective deadline is the earlier of its own and its group's.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>

#include "loop/clock.hpp"
#include "loop/intrusive_list.hpp"
#include "loop/timer_wheel.hpp"

namespace barrage {

struct Request;

struct Group {
  IntrusiveList<Request> members;
  uint64_t deadline_at_ms = 0;  // 0 = none
  int64_t deadline_ms = 0;
};

class Groups {
 public:
  Groups(TimerWheel& wheel, const Clock& clock) noexcept : wheel_(wheel), clock_(clock) {}

  // r joins its group (made on first use); false when out of memory.
  bool join(Request& r) noexcept;
  void leave(Request& r) noexcept;
  Group* find(uint64_t id) noexcept;
  // Sets the group's deadline (made on first use); every member's effective deadline follows.
  void set_deadline(uint64_t id, int64_t deadline_ms) noexcept;
  // Forgets a group whose members all left (its deadline no longer matters).
  void forget_if_empty(uint64_t id) noexcept;
  // The effective deadline of r, and its timer.
  void apply_deadline(Request& r) noexcept;

 private:
  Group* get(uint64_t id) noexcept;

  TimerWheel& wheel_;
  const Clock& clock_;
  std::unordered_map<uint64_t, std::unique_ptr<Group>> groups_;
};

}  // namespace barrage
