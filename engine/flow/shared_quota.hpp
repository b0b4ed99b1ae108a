// One limit key's share of a quota kept in Redis, as a sans-I/O decision
// maker (time passed in, like RateGate): which units the process holds, when
// to ask Redis for more and how many, what to give back, and the local share
// it falls back to while Redis cannot answer. The round trip itself (the
// script in shared_quota.lua) is the caller's; this only says what to send
// and reads what came back.
//
// A lease is a reservation of units on the shared GCRA schedule: unit j is
// spent no earlier than its instant, so the units of all processes together
// never beat the bucket, however many a lease holds. Instants are Redis's,
// mapped to this process's clock by RedisClockMap (not counted from when the
// answer arrived: answers that arrive late, or later in one process than in
// another, would otherwise move units into another process's second).
// The lease size follows the process's own rate (a little more than a
// horizon's worth of it), capped at its fair share of the horizon, and a
// key asks again only when what it holds is
// nearly spent: so a busy process asks about once per lease, and n
// saturated processes once per 1/n of the horizon's units each.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "flow/rate_gate.hpp"
#include "flow/token_bucket.hpp"

namespace barrage {

struct SharedTuning {
  uint64_t horizon_ns = 2000000000;     // how far ahead a lease may reserve (BRG_OPT_SHARED_LEASE_MS)
  uint64_t timeout_ns = 250000000;      // a round trip slower than this: fall back
  uint64_t rejoin_ns = 500000000;       // while fallen back, ask this often
  uint64_t idle_return_ns = 250000000;  // nothing waiting this long: unused units go back
};

// Redis's clock (TIME, wall clock µs) on this process's monotonic clock.
// Each answer bounds the offset between the two: Redis ran the script after
// the ask left and before the answer came back. The estimate is the tightest
// upper bound seen (so a mapped instant is never earlier than the true one),
// allowed to rise by 1,000 ppm for clock-rate drift, and reset when an answer
// proves it too low (Redis's clock stepped back). An answer's own bounds
// always hold: the mapping of its `now` lies between its ask and its arrival.
class RedisClockMap {
 public:
  // The local instant of Redis's `redis_us` in an answer asked at sent_ns and
  // received at recv_ns.
  uint64_t map(uint64_t sent_ns, uint64_t recv_ns, int64_t redis_us) noexcept;
  // How late map() may place an instant: the round trip of the answer that
  // set the estimate, plus the drift allowed since (0 before any answer).
  uint64_t error_ns(uint64_t now_ns) const noexcept;

 private:
  bool have_ = false;
  int64_t offset_ns_ = 0;  // local - Redis, an upper bound
  uint64_t at_ns_ = 0;     // when offset_ns_ was last set or raised
  uint64_t rtt_ns_ = 0;    // the round trip of the answer that set it
  uint64_t drift_ns_ = 0;  // allowance added since
};

// Units of one bucket reserved by leases: segment i's unit j (1-based) may be
// spent from start_ns + j * interval_ns on.
class LeaseSchedule {
 public:
  // anchor_ns: the local instant of Redis's `now` in the answer (base_us is
  // relative to it); units due before it are due at it.
  void add(uint64_t anchor_ns, int64_t base_us, int64_t count, double interval_ns);
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
  // Drops everything and returns how many unspent units are due after
  // after_ns: only those may go back to Redis. A unit whose instant has
  // passed was already given back by the bucket's refill; returned as well,
  // it would be spent twice (the start-up excess over burst + rate).
  int64_t release(uint64_t after_ns) noexcept;
  // Gives up to n unspent units, the earliest first (a debt paid from the
  // lease, as a local bucket would: the next take waits for the units after
  // them; paid with the latest, the debt would be spent now and repaid up to
  // a horizon later, beyond the limit in every window until then); returns
  // how many.
  int64_t forfeit(int64_t n) noexcept;

 private:
  struct Segment {
    double start_ns;
    double interval_ns;
    uint64_t anchor_ns;  // units due before Redis's `now` count from it
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
  // The local instant of Redis's `now` (base_us counts from it); 0: the
  // answer's arrival. How late that may be (RedisClockMap::error_ns), and the
  // round trip of this answer.
  uint64_t anchor_ns = 0, clock_error_ns = 0, rtt_ns = 0;
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
  int64_t lease_size(double rate_per_s, double interval_ns, int64_t need) const noexcept;
  int64_t low_water(double rate_per_s) const noexcept;
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
  uint64_t req_not_before_ = 0, tok_not_before_ = 0;  // a bucket's back-off after a partial grant
  uint64_t last_take_ = 0;
  // Consumption rate (units/s), smoothed over asks.
  double req_rate_ = 0, tok_rate_ = 0;
  int64_t req_taken_ = 0, tok_taken_ = 0;
  uint64_t rate_since_ = 0;
  int64_t live_ = 1;
  uint64_t clock_error_ns_ = 0, rtt_ns_ = 0;  // from the last answer
  bool fallback_ = false;
  TokenBucket share_req_, share_tok_;  // the local share while fallen back
};

}  // namespace barrage
