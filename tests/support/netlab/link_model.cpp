// The rules of one link direction; see link_model.hpp for their order.
#include "link_model.hpp"

#include <algorithm>

namespace barrage::netlab {

uint64_t LinkModel::next_random() noexcept {
  uint64_t z = (rng_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::optional<uint64_t> LinkModel::admit(uint64_t now_ns, uint32_t bytes) noexcept {
  if (down_at(now_ns)) {
    ++counters_.down;
    return std::nullopt;
  }
  // One draw per packet whatever the setting, so changing the loss rate
  // does not shift the jitter draws of later packets.
  const double draw = uniform01();
  if (draw < settings_.loss) {
    ++counters_.lost;
    return std::nullopt;
  }
  uint64_t on_wire = now_ns;
  if (settings_.rate_bps > 0) {
    const uint64_t start = std::max(now_ns, busy_until_);
    // Bytes still waiting for (or on) the wire ahead of this packet.
    const uint64_t backlog = (start - now_ns) * settings_.rate_bps / 8 / 1'000'000'000ULL;
    if (backlog + bytes > settings_.queue_bytes) {
      ++counters_.queue;
      return std::nullopt;
    }
    busy_until_ = start + uint64_t(bytes) * 8 * 1'000'000'000ULL / settings_.rate_bps;
    on_wire = busy_until_;
  }
  uint64_t delay = settings_.delay_ns;
  if (settings_.jitter_ns > 0) {
    const uint64_t span = 2 * settings_.jitter_ns + 1;
    const int64_t offset = int64_t(next_random() % span) - int64_t(settings_.jitter_ns);
    delay = offset < 0 && uint64_t(-offset) > delay ? 0 : uint64_t(int64_t(delay) + offset);
  }
  const uint64_t departure = on_wire + delay;
  if (departure < last_departure_) ++counters_.reordered;
  last_departure_ = std::max(last_departure_, departure);
  return departure;
}

bool LinkModel::depart(uint64_t now_ns, uint64_t due_ns, uint32_t bytes) noexcept {
  if (down_at(now_ns)) {
    ++counters_.down;
    return false;
  }
  ++counters_.passed;
  counters_.bytes += bytes;
  const uint64_t late = now_ns > due_ns ? now_ns - due_ns : 0;
  counters_.late_max_ns = std::max(counters_.late_max_ns, late);
  counters_.late_sum_ns += late;
  return true;
}

}  // namespace barrage::netlab
