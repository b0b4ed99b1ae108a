// One limit key's share of a quota kept in Redis, as a sans-I/O decision
// maker (time passed in, like RateGate): which units the process holds, when
// to ask Redis for more and how many, what to give back, and the local share
// it falls back to while Redis cannot answer. The round trip itself (the
// script in shared_quota.lua) is the caller's; this only says what to send
// and reads what came back.
//
// A lease is a reservation of units on the shared GCRA schedule: unit j is
// spent no earlier than its instant, so the units of all processes together
// never beat the bucket, however many a lease holds. The lease size follows
// the process's own rate (a horizon's worth of it), capped at its fair share
// of the limit, so a busy process asks about once per horizon.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "flow/rate_gate.hpp"
#include "flow/token_bucket.hpp"

namespace barrage {

struct SharedTuning {
  uint64_t horizon_ns = 1000000000;     // how far ahead a lease may reserve
  uint64_t timeout_ns = 250000000;      // a round trip slower than this: fall back
  uint64_t rejoin_ns = 500000000;       // while fallen back, ask this often
  uint64_t idle_return_ns = 250000000;  // nothing waiting this long: unused units go back
};

// Units of one bucket reserved by leases: segment i's unit j (1-based) may be
// spent from start_ns + j * interval_ns on.
class LeaseSchedule {
 public:
  void add(uint64_t now_ns, int64_t base_us, int64_t count, double interval_ns);
  int64_t held() const noexcept { return held_; }  // reserved, not yet spent
  int64_t available(uint64_t now_ns) const noexcept;
  // Earliest instant n units are available; UINT64_MAX when fewer are held.
  uint64_t ready_at(int64_t n, uint64_t now_ns) const noexcept;
  void take(int64_t n, uint64_t now_ns) noexcept;  // n <= available(now_ns)
  // Units whose instant is older than before_ns and still unspent are
  // dropped: spent now, they would join the units due now and beat the
  // bucket (a unit nobody wanted at its instant is lost, as in any bucket).
  void expire(uint64_t before_ns) noexcept;
  int64_t clear() noexcept;                        // drops everything, returns how much
  // Gives up to n unspent units, the latest first (a debt paid from the
  // lease); returns how many.
  int64_t forfeit(int64_t n) noexcept;

 private:
  struct Segment {
    double start_ns;
    double interval_ns;
    uint64_t arrived_ns;  // units due before the lease arrived count from its arrival
    int64_t count, used;
    int64_t due(uint64_t now_ns) const noexcept;  // units whose instant has come, spent or not
  };
  std::vector<Segment> segs_;
  int64_t held_ = 0;
};

// What one round trip sends (the script's ARGV) and what it answers.
struct LeaseBucketAsk {
  int64_t adjust = 0;  // > 0 charge, < 0 give back
  int64_t min = 0, max = 0;
  int64_t clamp = -1;  // the server says at most this many are left; -1: nothing said
};
struct LeaseAsk {
  LeaseBucketAsk requests, tokens;
  int64_t cooldown_ms = 0;
};
struct LeaseAnswer {
  int64_t requests = 0, requests_base_us = 0, tokens = 0, tokens_base_us = 0;
  int64_t wait_us = 0, cooldown_ms = 0, live = 1;
};

class SharedQuota {
 public:
  SharedQuota(const FlowLimits& limits, const SharedTuning& tuning, uint64_t now_ns) noexcept;

  // GCRA emission interval of each bucket in µs for the script (0: no bucket), and its burst.
  double request_interval_us() const noexcept { return req_interval_ns_ / 1000; }
  double token_interval_us() const noexcept { return tok_interval_ns_ / 1000; }
  int64_t request_burst() const noexcept { return req_burst_; }
  int64_t token_burst() const noexcept { return tok_burst_; }

  // Admission: one request unit and `tokens` token units, now or not at all.
  bool try_take(int64_t tokens, uint64_t now_ns) noexcept;
  // When try_take(tokens) will succeed with what is held (or, fallen back,
  // with the local share); UINT64_MAX when only an answer can tell.
  uint64_t ready_at(int64_t tokens, uint64_t now_ns) noexcept;

  // The round trip to make now, if any: `waiting` requests queue on the key,
  // the first wanting `head_tokens`. Marks the ask as in flight.
  std::optional<LeaseAsk> ask(size_t waiting, int64_t head_tokens, uint64_t now_ns) noexcept;
  // The earliest instant ask() may want a round trip with nothing else
  // happening (a wait ends, units to give back, a rejoin attempt);
  // UINT64_MAX: only an event will.
  uint64_t next_ask_at(size_t waiting, int64_t head_tokens, uint64_t now_ns) const noexcept;
  // The answer to the ask in flight. Returns the cooldown (ms) Redis holds for the key.
  int64_t answered(const LeaseAnswer& a, uint64_t now_ns) noexcept;
  // The ask in flight got no answer (timeout, link down): use the local share.
  void failed(uint64_t now_ns) noexcept;
  bool asking() const noexcept { return in_flight_.has_value(); }
  bool fallen_back() const noexcept { return fallback_; }
  int64_t live() const noexcept { return live_; }

  // Facts to pass on with the next round trip.
  void settle(int64_t estimated, int64_t actual, uint64_t now_ns) noexcept;  // actual < 0: unknown
  void refund(int64_t tokens, uint64_t now_ns) noexcept;  // an attempt that never reached the server
  void cool_down(int64_t ms) noexcept;
  void clamp(int64_t remaining_requests, int64_t remaining_tokens) noexcept;

 private:
  bool urgent() const noexcept;
  void drop_stale(uint64_t now_ns) noexcept;
  int64_t lease_size(double rate_per_s, double interval_ns, int64_t waiting) const noexcept;
  void configure_share(uint64_t now_ns) noexcept;

  FlowLimits limits_;
  SharedTuning tuning_;
  double req_interval_ns_ = 0, tok_interval_ns_ = 0;
  int64_t req_burst_ = 0, tok_burst_ = 0;
  LeaseSchedule req_, tok_;
  LeaseAsk pending_;  // adjustments, clamps and cooldown not sent yet
  std::optional<LeaseAsk> in_flight_;
  uint64_t asked_at_ = 0;
  uint64_t not_before_ = 0;   // Redis said wait, or the next rejoin attempt
  uint64_t last_take_ = 0;
  // Consumption rate (units/s), smoothed over asks.
  double req_rate_ = 0, tok_rate_ = 0;
  int64_t req_taken_ = 0, tok_taken_ = 0;
  uint64_t rate_since_ = 0;
  int64_t live_ = 1;
  bool fallback_ = false;
  TokenBucket share_req_, share_tok_;  // the local share while fallen back
};

}  // namespace barrage
