// One direction of the impaired link, without I/O: given when a packet
// arrived and how long it is, says whether it is dropped (and counts why) or
// when it leaves. The delay line owns the sockets and the clock; this owns
// the rules, so they can be tested with time passed in.
//
// Order of the rules for a packet arriving at t:
//   1. the link is down at t            -> dropped (down)
//   2. random loss (seeded draw)         -> dropped (loss)
//   3. rate cap: it waits behind the bytes still being serialised; if those
//      and it exceed queue_bytes          -> dropped (queue, tail drop)
//      else it is on the wire at s = max(t, busy) + bytes * 8 / rate
//   4. it leaves at s + delay + jitter draw (uniform in [-jitter, +jitter],
//      never below s): packets may overtake each other (counted as reordered)
//   5. the link is down when it would leave -> dropped (down), see depart()
#pragma once

#include <cstdint>
#include <optional>

namespace barrage::netlab {

struct LinkSettings {
  uint64_t delay_ns = 0;
  uint64_t jitter_ns = 0;
  double loss = 0;                 // 0..1, independent per packet
  uint64_t rate_bps = 0;           // bits per second on the wire; 0 = unlimited
  uint64_t queue_bytes = 262144;   // bytes waiting for the wire before tail drop
};

struct LinkCounters {
  uint64_t passed = 0;         // delivered packets
  uint64_t bytes = 0;          // delivered bytes
  uint64_t lost = 0;           // dropped by the random loss
  uint64_t down = 0;           // dropped while the link was down
  uint64_t queue = 0;          // dropped because the rate cap's queue was full
  uint64_t reordered = 0;      // admitted to leave before a packet admitted earlier
  uint64_t late_max_ns = 0;    // how long after its departure time a packet really left, at most
  uint64_t late_sum_ns = 0;    // and summed over the passed packets (the delay line's own lag)
};

class LinkModel {
 public:
  explicit LinkModel(uint64_t seed) noexcept : rng_(seed) {}

  void set(const LinkSettings& s) noexcept { settings_ = s; }
  const LinkSettings& settings() const noexcept { return settings_; }

  // Everything arriving or due to leave before t_ns is dropped (rule 1 and 5).
  void set_down_until(uint64_t t_ns) noexcept { down_until_ = t_ns; }
  bool down_at(uint64_t t_ns) const noexcept { return t_ns < down_until_; }

  // Rules 1-4 for a packet arriving at now_ns: its departure time, or
  // nothing when it is dropped (and counted).
  std::optional<uint64_t> admit(uint64_t now_ns, uint32_t bytes) noexcept;

  // Rule 5 for a packet due at due_ns and leaving at now_ns: true when it
  // goes out (counted as passed, with its lateness), false when the link went
  // down meanwhile (counted as down).
  bool depart(uint64_t now_ns, uint64_t due_ns, uint32_t bytes) noexcept;

  // A drop the caller made (no buffer, write error), counted as queue.
  void count_overflow() noexcept { ++counters_.queue; }

  const LinkCounters& counters() const noexcept { return counters_; }

 private:
  uint64_t next_random() noexcept;  // splitmix64
  double uniform01() noexcept { return double(next_random() >> 11) * 0x1.0p-53; }

  LinkSettings settings_;
  LinkCounters counters_;
  uint64_t rng_;
  uint64_t down_until_ = 0;
  uint64_t busy_until_ = 0;      // when the wire has serialised what it holds
  uint64_t last_departure_ = 0;  // of the latest admitted packet
};

}  // namespace barrage::netlab
