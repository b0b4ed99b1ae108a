// SharedQuota: leases on the shared GCRA schedule, their size, what goes
// back, and the local share while Redis is away.
#include "flow/shared_quota.hpp"

#include <algorithm>
#include <cmath>

namespace barrage {

namespace {
constexpr uint64_t kNsPerMs = 1000000;
constexpr uint64_t kMinuteNs = 60000 * kNsPerMs;
}  // namespace

uint64_t RedisClockMap::map(uint64_t sent_ns, uint64_t recv_ns, int64_t redis_us) noexcept {
  const int64_t r = redis_us * 1000;
  const int64_t hi = int64_t(recv_ns) - r;  // the offset is at most this (Redis ran before the answer came)
  const int64_t lo = int64_t(sent_ns) - r;  // and at least this (it ran after the ask left)
  if (have_ && recv_ns > at_ns_) {
    const uint64_t drift = (recv_ns - at_ns_) / 1000;  // 1,000 ppm
    offset_ns_ += int64_t(drift);
    drift_ns_ += drift;
    at_ns_ = recv_ns;
  }
  if (!have_ || hi < offset_ns_ || lo > offset_ns_) {
    have_ = true;
    offset_ns_ = hi;
    at_ns_ = recv_ns;
    rtt_ns_ = recv_ns - sent_ns;
    drift_ns_ = 0;
  }
  return uint64_t(std::clamp<int64_t>(r + offset_ns_, int64_t(sent_ns), int64_t(recv_ns)));
}

uint64_t RedisClockMap::error_ns(uint64_t now_ns) const noexcept {
  if (!have_) return 0;
  return rtt_ns_ + drift_ns_ + (now_ns > at_ns_ ? (now_ns - at_ns_) / 1000 : 0);
}

int64_t LeaseSchedule::Segment::due(uint64_t now_ns) const noexcept {
  double n = std::floor((double(now_ns) - start_ns) / interval_ns);
  if (n <= 0) return 0;
  return n >= double(count) ? count : int64_t(n);
}

void LeaseSchedule::add(uint64_t anchor_ns, int64_t base_us, int64_t count, double interval_ns) {
  if (count <= 0) return;
  segs_.push_back(Segment{double(anchor_ns) + double(base_us) * 1000, interval_ns, anchor_ns, count, 0});
  held_ += count;
}

int64_t LeaseSchedule::available(uint64_t now_ns) const noexcept {
  int64_t n = 0;
  for (const Segment& s : segs_) n += std::max<int64_t>(s.due(now_ns) - s.used, 0);
  return n;
}

uint64_t LeaseSchedule::ready_at(int64_t n, uint64_t now_ns) const noexcept {
  if (n <= 0) return now_ns;
  if (held_ < n) return UINT64_MAX;
  // Segments are spent oldest first, so the n-th unit is the one that decides.
  double at = 0;
  for (const Segment& s : segs_) {
    int64_t unspent = s.count - s.used;
    int64_t k = std::min(n, unspent);
    at = std::max(at, s.start_ns + double(s.used + k) * s.interval_ns);
    n -= k;
    if (n == 0) break;
  }
  uint64_t t = uint64_t(std::ceil(at));
  return std::max(t, now_ns);
}

void LeaseSchedule::take(int64_t n, uint64_t now_ns) noexcept {
  for (Segment& s : segs_) {
    if (n == 0) break;
    int64_t k = std::min(n, s.due(now_ns) - s.used);
    if (k <= 0) continue;
    s.used += k;
    held_ -= k;
    n -= k;
  }
  while (!segs_.empty() && segs_.front().used == segs_.front().count) segs_.erase(segs_.begin());
}

void LeaseSchedule::expire(uint64_t before_ns) noexcept {
  for (Segment& s : segs_) {
    if (before_ns < s.anchor_ns) continue;
    int64_t stale = s.due(before_ns);
    if (stale > s.used) {
      held_ -= stale - s.used;
      s.used = stale;
    }
  }
  while (!segs_.empty() && segs_.front().used == segs_.front().count) segs_.erase(segs_.begin());
}

int64_t LeaseSchedule::forfeit(int64_t n) noexcept {
  int64_t done = 0;
  for (Segment& s : segs_) {
    if (done == n) break;
    const int64_t k = std::min(n - done, s.count - s.used);
    s.used += k;  // may run ahead of the units due: those are spoken for
    held_ -= k;
    done += k;
  }
  while (!segs_.empty() && segs_.front().used == segs_.front().count) segs_.erase(segs_.begin());
  return done;
}

int64_t LeaseSchedule::release(uint64_t after_ns) noexcept {
  int64_t n = 0;
  for (const Segment& s : segs_) {
    int64_t gone = s.used;
    if (after_ns >= s.anchor_ns) gone = std::max(gone, s.due(after_ns));
    n += s.count - gone;
  }
  clear();
  return n;
}

int64_t LeaseSchedule::clear() noexcept {
  int64_t n = held_;
  segs_.clear();
  held_ = 0;
  return n;
}

SharedQuota::SharedQuota(const FlowLimits& limits, const SharedTuning& tuning, uint64_t now_ns) noexcept
    : limits_(limits), tuning_(tuning), rate_since_(now_ns) {
  if (limits.requests_per_period > 0 && limits.period_ms > 0) {
    req_interval_ns_ = double(limits.period_ms) * kNsPerMs / double(limits.requests_per_period);
    req_burst_ = limits.request_burst > 0 ? limits.request_burst : limits.requests_per_period;
  }
  if (limits.tokens_per_minute > 0) {
    tok_interval_ns_ = double(kMinuteNs) / double(limits.tokens_per_minute);
    tok_burst_ = limits.token_burst > 0 ? limits.token_burst : limits.tokens_per_minute;
  }
}

bool SharedQuota::try_take(int64_t tokens, uint64_t now_ns) noexcept {
  const int64_t nr = req_interval_ns_ > 0 ? 1 : 0;
  const int64_t nt = tok_interval_ns_ > 0 ? std::max<int64_t>(tokens, 0) : 0;
  if (fallback_) {
    if (share_req_.ready_at(nr, now_ns) > now_ns || share_tok_.ready_at(nt, now_ns) > now_ns) return false;
    share_req_.try_take(nr, now_ns);
    share_tok_.try_take(nt, now_ns);
  } else {
    drop_stale(now_ns);
    if (req_.available(now_ns) < nr || tok_.available(now_ns) < nt) return false;
    req_.take(nr, now_ns);
    tok_.take(nt, now_ns);
  }
  req_taken_ += nr;
  tok_taken_ += nt;
  last_take_ = now_ns;
  return true;
}

// Request units are single takes: one left unspent well past its instant
// found no request waiting. Token units gather for one take, so they stay.
// The slack covers the mapping's error, so that a lease's burst survives a
// slow link; an answer that arrived later than that is stale, and so are
// its units.
void SharedQuota::drop_stale(uint64_t now_ns) noexcept {
  const uint64_t slack = uint64_t(std::max({2 * req_interval_ns_, 10e6, 2 * double(clock_error_ns_)}));
  if (now_ns > slack) req_.expire(now_ns - slack);
}

uint64_t SharedQuota::ready_at(int64_t tokens, uint64_t now_ns) noexcept {
  const int64_t nr = req_interval_ns_ > 0 ? 1 : 0;
  const int64_t nt = tok_interval_ns_ > 0 ? std::max<int64_t>(tokens, 0) : 0;
  if (fallback_) return std::max(share_req_.ready_at(nr, now_ns), share_tok_.ready_at(nt, now_ns));
  drop_stale(now_ns);
  return std::max(req_.ready_at(nr, now_ns), tok_.ready_at(nt, now_ns));
}

// A little more than a horizon's worth of the process's own rate, or what
// waits needs if more, but never more than its fair share of the horizon
// (1/n of it for n live processes; the script caps it again with the live
// count it sees, which the process learns only from the answer): n
// saturated processes then all fit in the horizon, and none finds it full
// whenever it asks. Each asks only when nearly out, so a lease is one round
// trip: 1000/k per 1,000 units, at least n * 1000 / (rate * horizon) when
// all are saturated, 10 for 4 processes at 200/s on the default 2 s horizon.
int64_t SharedQuota::lease_size(double rate_per_s, double interval_ns, int64_t need) const noexcept {
  if (interval_ns <= 0) return 0;
  const double horizon_units = double(tuning_.horizon_ns) / interval_ns;
  const int64_t cap = std::max<int64_t>(1, int64_t(horizon_units / double(live_)));
  const int64_t by_rate = int64_t(std::ceil(1.25 * rate_per_s * double(tuning_.horizon_ns) / 1e9));
  return std::clamp<int64_t>(std::max(by_rate, need), 1, cap);
}

// What to hold when asking again: enough for two round trips and 5 ms more
// at the process's rate, so that without contention the next lease arrives
// before the last unit is spent. Asking earlier would only split leases.
int64_t SharedQuota::low_water(double rate_per_s) const noexcept {
  const double s = double(2 * rtt_ns_) / 1e9 + 0.005;
  return std::max<int64_t>(1, int64_t(std::ceil(rate_per_s * s)));
}

bool SharedQuota::urgent() const noexcept {
  return pending_.cooldown_ms > 0 || pending_.requests.clamp >= 0 || pending_.tokens.clamp >= 0;
}

uint64_t SharedQuota::next_ask_at(size_t waiting, int64_t head_tokens, uint64_t now_ns) const noexcept {
  if (in_flight_) return UINT64_MAX;
  if (urgent()) return now_ns;
  if (fallback_) return std::max(now_ns, not_before_);
  uint64_t at = UINT64_MAX;
  // Only waiting requests reserve units: a lease taken for nobody would
  // hold units others need, and spent late it would add to a burst.
  if (waiting > 0) {
    // Ask again once the units held are nearly spent, or cannot cover the
    // first waiting request.
    const bool short_r = req_interval_ns_ > 0 && req_.held() < std::max<int64_t>(1, low_water(req_rate_));
    const bool short_t =
        tok_interval_ns_ > 0 && (tok_.held() < low_water(tok_rate_) || tok_.held() < head_tokens);
    if (short_t) at = std::min(at, std::max({now_ns, not_before_, tok_not_before_}));
    if (short_r) {
      // Request units not spent soon after their instant are lost
      // (drop_stale): while the tokens held cannot let the first request go
      // yet, ask for them in time for when they can, not now.
      uint64_t r_at = now_ns;
      if (!short_t && tok_interval_ns_ > 0) {
        const uint64_t lead = 2 * rtt_ns_ + 5 * kNsPerMs;
        const uint64_t tr = tok_.ready_at(head_tokens, now_ns);
        if (tr != UINT64_MAX && tr > now_ns + lead) r_at = tr - lead;
      }
      at = std::min(at, std::max({r_at, not_before_, req_not_before_}));
    }
  }
  const bool adjusting = pending_.requests.adjust != 0 || pending_.tokens.adjust != 0;
  if (adjusting) at = std::min(at, std::max(now_ns, asked_at_ + tuning_.horizon_ns));
  if (waiting == 0 && (req_.held() > 0 || tok_.held() > 0)) {
    at = std::min(at, std::max(now_ns, last_take_ + tuning_.idle_return_ns));
  }
  return at;
}

std::optional<LeaseAsk> SharedQuota::ask(size_t waiting, int64_t head_tokens, uint64_t now_ns) noexcept {
  if (next_ask_at(waiting, head_tokens, now_ns) > now_ns) return std::nullopt;
  // The rates the lease sizes follow, smoothed over at least 100 ms.
  const uint64_t dt = now_ns - rate_since_;
  if (dt >= 100 * kNsPerMs) {
    const double s = double(dt) / 1e9;
    const double ir = double(req_taken_) / s, it = double(tok_taken_) / s;
    req_rate_ = req_rate_ == 0 ? ir : (req_rate_ + ir) / 2;
    tok_rate_ = tok_rate_ == 0 ? it : (tok_rate_ + it) / 2;
    req_taken_ = tok_taken_ = 0;
    rate_since_ = now_ns;
  }
  LeaseAsk a = pending_;
  pending_ = LeaseAsk{};
  const bool idle = waiting == 0 && now_ns - last_take_ >= tuning_.idle_return_ns;
  if (idle && !fallback_) {
    // Nobody here wants them: units held go back for others, those still
    // due after the answer's error and a round trip from now (the others
    // are lost: the bucket refilled past them).
    const uint64_t after = now_ns + clock_error_ns_ + rtt_ns_;
    a.requests.adjust -= req_.release(after);
    a.tokens.adjust -= tok_.release(after);
  } else if (waiting > 0 || fallback_) {
    const int64_t head = std::max<int64_t>(head_tokens, 0);
    // What waits needs: a unit per request, and (unknown but the first's)
    // about the first's tokens for each.
    const int64_t kr = lease_size(req_rate_, req_interval_ns_, int64_t(waiting));
    const int64_t kt = std::max(lease_size(tok_rate_, tok_interval_ns_, int64_t(waiting) * std::max<int64_t>(head, 1)), head);
    if (req_interval_ns_ > 0) {
      a.requests.max = std::max<int64_t>(kr - req_.held(), 0);
      a.requests.min = waiting > 0 && req_.held() == 0 ? 1 : 0;
    }
    if (tok_interval_ns_ > 0) {
      a.tokens.max = std::max<int64_t>(kt - tok_.held(), 0);
      a.tokens.min = waiting > 0 ? std::max<int64_t>(head - tok_.held(), 0) : 0;
    }
  }
  in_flight_ = a;
  asked_at_ = now_ns;
  return a;
}

int64_t SharedQuota::answered(const LeaseAnswer& a, uint64_t now_ns) noexcept {
  const LeaseAsk asked = in_flight_.value_or(LeaseAsk{});
  in_flight_.reset();
  if (fallback_) {
    // Rejoined: what the local share held is not Redis's to know.
    fallback_ = false;
    share_req_ = TokenBucket();
    share_tok_ = TokenBucket();
  }
  live_ = std::max<int64_t>(a.live, 1);
  clock_error_ns_ = a.clock_error_ns;
  rtt_ns_ = a.rtt_ns;
  if (a.requests > 0 || a.tokens > 0) last_take_ = std::max(last_take_, now_ns);  // idle counts from here
  const uint64_t anchor = a.anchor_ns ? a.anchor_ns : now_ns;
  req_.add(anchor, a.requests_base_us, a.requests, req_interval_ns_);
  tok_.add(anchor, a.tokens_base_us, a.tokens, tok_interval_ns_);
  not_before_ = a.wait_us > 0 ? now_ns + uint64_t(a.wait_us) * 1000 : 0;
  // A bucket granted less than asked is reserved to the horizon's end:
  // asking for it again before part of the horizon has passed would only be
  // refused. The other bucket may still ask (a key short of request units
  // must not wait on its token bucket's back-off, nor the reverse).
  const uint64_t back_off = now_ns + tuning_.horizon_ns / 8;
  req_not_before_ = a.wait_us == 0 && a.requests < asked.requests.max ? back_off : 0;
  tok_not_before_ = a.wait_us == 0 && a.tokens < asked.tokens.max ? back_off : 0;
  return a.cooldown_ms;
}

void SharedQuota::failed(uint64_t now_ns) noexcept {
  in_flight_.reset();
  not_before_ = now_ns + tuning_.rejoin_ns;
  if (fallback_) return;
  fallback_ = true;
  // Units leased before stay spent in Redis's eyes; the local share starts
  // empty, so the processes together do not add a burst to what they took.
  req_.clear();
  tok_.clear();
  pending_ = LeaseAsk{};
  configure_share(now_ns);
}

void SharedQuota::configure_share(uint64_t now_ns) noexcept {
  share_req_ = TokenBucket();
  share_tok_ = TokenBucket();
  const uint64_t live = uint64_t(live_);
  if (req_interval_ns_ > 0) {
    share_req_.configure(limits_.requests_per_period, uint64_t(limits_.period_ms) * kNsPerMs * live,
                         std::max<int64_t>(1, req_burst_ / live_), now_ns);
    share_req_.try_take(share_req_.available(now_ns), now_ns);
  }
  if (tok_interval_ns_ > 0) {
    share_tok_.configure(limits_.tokens_per_minute, kMinuteNs * live, std::max<int64_t>(1, tok_burst_ / live_),
                         now_ns);
    share_tok_.try_take(share_tok_.available(now_ns), now_ns);
  }
}

void SharedQuota::settle(int64_t estimated, int64_t actual, uint64_t now_ns) noexcept {
  if (actual < 0 || estimated < 0 || tok_interval_ns_ <= 0) return;
  if (fallback_) {
    share_tok_.adjust(estimated - actual, now_ns);
    return;
  }
  int64_t debt = actual - estimated;
  // A debt is paid from the units held first: sent with the next ask only,
  // it would let leases taken before then ignore it.
  if (debt > 0) debt -= tok_.forfeit(debt);
  pending_.tokens.adjust += debt;
}

void SharedQuota::refund(int64_t tokens, uint64_t now_ns) noexcept {
  const int64_t nt = tok_interval_ns_ > 0 ? std::max<int64_t>(tokens, 0) : 0;
  const int64_t nr = req_interval_ns_ > 0 ? 1 : 0;
  if (fallback_) {
    share_req_.adjust(nr, now_ns);
    share_tok_.adjust(nt, now_ns);
  } else {
    pending_.requests.adjust -= nr;
    pending_.tokens.adjust -= nt;
  }
}

void SharedQuota::cool_down(int64_t ms) noexcept {
  if (ms > 0) pending_.cooldown_ms = std::max(pending_.cooldown_ms, ms);
}

void SharedQuota::clamp(int64_t remaining_requests, int64_t remaining_tokens) noexcept {
  auto tighten = [](int64_t& c, int64_t r) {
    if (r >= 0) c = c < 0 ? r : std::min(c, r);
  };
  if (req_interval_ns_ > 0) tighten(pending_.requests.clamp, remaining_requests);
  if (tok_interval_ns_ > 0) tighten(pending_.tokens.clamp, remaining_tokens);
}

}  // namespace barrage
