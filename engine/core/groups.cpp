// Groups: membership and the shared deadline.
#include "core/groups.hpp"

#include "core/request.hpp"

namespace barrage {

Group* Groups::get(uint64_t id) noexcept {
  try {
    auto& g = groups_[id];
    if (!g) g = std::make_unique<Group>();
    return g.get();
  } catch (...) {
    return nullptr;
  }
}

Group* Groups::find(uint64_t id) noexcept {
  auto it = groups_.find(id);
  return it == groups_.end() ? nullptr : it->second.get();
}

bool Groups::join(Request& r) noexcept {
  r.group = get(r.group_id);
  if (!r.group) return false;
  r.group->members.push_back(r.group_hook, &r);
  apply_deadline(r);
  return true;
}

void Groups::leave(Request& r) noexcept {
  Group* g = r.group;
  if (!g) return;
  g->members.remove(r.group_hook);
  r.group = nullptr;
  // Keep a group whose deadline is still ahead: later members must see it.
  if (g->members.empty() && (g->deadline_at_ms == 0 || g->deadline_at_ms <= clock_.now_ms()))
    groups_.erase(r.group_id);
}

void Groups::forget_if_empty(uint64_t id) noexcept {
  Group* g = find(id);
  if (g && g->members.empty()) groups_.erase(id);
}

void Groups::set_deadline(uint64_t id, int64_t deadline_ms) noexcept {
  Group* g = get(id);
  if (!g) return;
  g->deadline_ms = deadline_ms;
  // Beyond ~34 years (BRG_NO_TIMEOUT) it is no deadline rather than an overflow.
  g->deadline_at_ms = deadline_ms >= Clock::kForeverMs ? 0 : clock_.expiry_after(deadline_ms);
  g->members.for_each([this](Request* r) { apply_deadline(*r); });
}

void Groups::apply_deadline(Request& r) noexcept {
  uint64_t at = r.own_deadline_at_ms;
  r.group_deadline = false;
  if (r.group && r.group->deadline_at_ms && (at == 0 || r.group->deadline_at_ms < at)) {
    at = r.group->deadline_at_ms;
    r.group_deadline = true;
  }
  r.deadline_at_ms = at;
  if (at)
    wheel_.arm(r.deadline_timer, at);
  else if (r.deadline_timer.armed())
    wheel_.cancel(r.deadline_timer);
}

}  // namespace barrage
