// Google Benchmark suite for TimerWheel: what arm, cancel, the arm+cancel
// churn of a per-request timeout, expiry and next_wake() cost at 1k, 100k and
// 1M armed timers, and how late timers fire when the wheel is driven like the
// reactor on the real monotonic clock. Timers are intrusive and pre-allocated,
// and nothing allocates inside a timed loop. Every benchmark checks the
// wheel's behaviour too (no timer early, none lost, none skipped) and fails
// the run through SkipWithError, which main() turns into a non-zero exit so
// that the bench-smoke test catches a broken wheel.
#include "loop/clock.hpp"
#include "loop/timer_wheel.hpp"
#include "bench_check.hpp"

#include <benchmark/benchmark.h>
#include <poll.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace barrage {
namespace {

// A wheel whose clock reads ~11.6 days of uptime, so that expiries have
// realistic high bits rather than starting at zero.
constexpr uint64_t kBaseMs = 1'000'000'000;
// Timeouts are drawn uniformly from 1 ms to 60 s.
constexpr uint64_t kMaxTimeoutMs = 60'000;
constexpr uint64_t kNsPerMs = 1'000'000;

using bench::fail;  // a wrong result exits 1 (bench_check.hpp)

// What the callbacks of the synthetic benchmarks record. now_ms is the
// argument of the advance() in progress.
struct Tally {
  uint64_t now_ms = 0;
  size_t fired = 0;
  size_t early = 0;         // fired with expiry > now_ms
  size_t inexact = 0;       // fired at a now_ms other than its expiry (stepped drives only)
  size_t out_of_order = 0;  // fired before a timer with a later expiry
  uint64_t last_expiry = 0;
  void reset(uint64_t now) noexcept {
    *this = Tally{};
    now_ms = now;
  }
};

// The object that owns a deadline, as a request or a connection would.
struct Probe {
  Timer timer;
  uint64_t expiry = 0;  // ms the benchmark armed it for
  Tally* tally = nullptr;
};

void on_fire(void* ctx) noexcept {
  auto* p = static_cast<Probe*>(ctx);
  Tally& t = *p->tally;
  ++t.fired;
  t.early += p->expiry > t.now_ms;
  t.inexact += p->expiry != t.now_ms;
  t.out_of_order += p->expiry < t.last_expiry;
  t.last_expiry = p->expiry;
}

// A wheel at kBaseMs holding `armed` probes with expiries uniform in
// kBaseMs + [1, kMaxTimeoutMs], plus `spare` probes with expiries drawn the
// same way but not armed. All memory is allocated here, before any timing.
class Population {
 public:
  Population(size_t armed, size_t spare, bool arm_now = true)
      : armed_(armed), probes_(armed + spare), order_(armed) {
    std::mt19937_64 rng(0x5eed'7153'0000'0000 ^ (armed * 31 + spare));
    std::uniform_int_distribution<uint64_t> timeout(1, kMaxTimeoutMs);
    for (Probe& p : probes_) {
      p.timer.fn = on_fire;
      p.timer.ctx = &p;
      p.tally = &tally_;
      p.expiry = kBaseMs + timeout(rng);
    }
    // Answers arrive in no particular order: cancels walk the probes in a
    // random permutation, so that they touch memory as a reactor would.
    std::iota(order_.begin(), order_.end(), uint32_t{0});
    std::shuffle(order_.begin(), order_.end(), rng);
    reset(arm_now);
  }

  // A fresh wheel at kBaseMs with the first `armed` probes armed (if arm_now).
  void reset(bool arm_now = true) noexcept {
    wheel_.reset();  // unlinks whatever is still armed
    wheel_.emplace(kBaseMs);
    tally_.reset(kBaseMs);
    if (arm_now)
      for (size_t i = 0; i < armed_; ++i) wheel_->arm(probes_[i].timer, probes_[i].expiry);
  }

  TimerWheel& wheel() noexcept { return *wheel_; }
  Tally& tally() noexcept { return tally_; }
  Probe& armed(size_t i) noexcept { return probes_[i]; }
  Probe& spare(size_t i) noexcept { return probes_[armed_ + i]; }
  // The i-th probe to cancel, i < armed count.
  Probe& shuffled(size_t i) noexcept { return probes_[order_[i]]; }
  size_t armed_count() const noexcept { return armed_; }

  uint64_t min_armed_expiry() const noexcept {
    uint64_t m = UINT64_MAX;
    for (const Probe& p : probes_)
      if (p.timer.armed()) m = std::min(m, p.expiry);
    return m;
  }

  // Drives the wheel the way the reactor does, advance(next_wake()) until it
  // is empty, and checks that every armed probe fires exactly once, at its
  // own expiry, in expiry order. Returns false (after failing the benchmark)
  // on any discrepancy. Runs outside the timed region.
  bool verify_drain(benchmark::State& state) {
    size_t expected = 0;
    for (const Probe& p : probes_) {
      if (!p.timer.armed()) continue;
      ++expected;
      if (p.timer.expiry() != p.expiry) return fail(state, "a timer's expiry differs from what it was armed for"), false;
    }
    if (expected != wheel_->size()) return fail(state, "size() differs from the number of armed timers"), false;
    const uint64_t limit = kBaseMs + kMaxTimeoutMs;
    tally_.reset(wheel_->next_wake());
    for (uint64_t w; (w = wheel_->next_wake()) != UINT64_MAX;) {
      if (w > limit) return fail(state, "next_wake() beyond the last expiry"), false;
      if (w < tally_.now_ms) return fail(state, "next_wake() went backwards"), false;
      tally_.now_ms = w;
      wheel_->advance(w);
    }
    const Tally t = tally_;
    tally_.reset(kBaseMs);
    if (t.early) return fail(state, std::to_string(t.early) + " timers fired early"), false;
    if (t.inexact) return fail(state, std::to_string(t.inexact) + " timers fired after their expiry"), false;
    if (t.out_of_order) return fail(state, std::to_string(t.out_of_order) + " timers fired out of order"), false;
    if (t.fired != expected)
      return fail(state, std::to_string(expected - t.fired) + " armed timers never fired"), false;
    if (wheel_->size() != 0) return fail(state, "size() is not 0 after the wheel drained"), false;
    return true;
  }

 private:
  size_t armed_;
  std::vector<Probe> probes_;
  std::vector<uint32_t> order_;
  Tally tally_;
  std::optional<TimerWheel> wheel_;
};

// Timed loops that need housekeeping (cancelling what was armed, re-arming
// what was cancelled) pause the clock once per batch. A PauseTiming/
// ResumeTiming pair costs ~0.5 us, which the batch spreads to < 0.5 ns per
// operation at 1k timers and < 0.1 ns from 8k up; in exchange the population
// moves between n and n + batch.
size_t batch_for(size_t n) { return std::clamp<size_t>(n, 1024, 8192); }

// ---- arm --------------------------------------------------------------------

// One arm() of an unarmed timer into a wheel holding n to n + batch. Every
// `batch` arms, the armed spares are cancelled with the clock paused.
void BM_Arm(benchmark::State& state) {
  const auto n = size_t(state.range(0));
  const size_t batch = batch_for(n);
  Population pop(n, batch);
  TimerWheel& wheel = pop.wheel();
  size_t i = 0;
  for (auto _ : state) {
    Probe& p = pop.spare(i);
    wheel.arm(p.timer, p.expiry);
    if (++i == batch) {
      state.PauseTiming();
      for (size_t k = 0; k < batch; ++k) wheel.cancel(pop.spare(k).timer);
      i = 0;
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(state.iterations());
  pop.verify_drain(state);
}

// ---- cancel -----------------------------------------------------------------

// One cancel() of an armed timer, picked in random order, from a wheel
// holding n + batch down to n. Every `batch` cancels, those timers are
// re-armed with the clock paused.
void BM_Cancel(benchmark::State& state) {
  const size_t batch = batch_for(size_t(state.range(0)));
  const size_t n = size_t(state.range(0)) + batch;  // armed at the start
  Population pop(n, 0);
  TimerWheel& wheel = pop.wheel();
  size_t pos = 0, in_batch = 0;
  for (auto _ : state) {
    wheel.cancel(pop.shuffled(pos).timer);
    if (++pos == n) pos = 0;
    if (++in_batch == batch) {
      state.PauseTiming();
      for (size_t k = 0, j = (pos + n - batch) % n; k < batch; ++k, j = j + 1 == n ? 0 : j + 1) {
        Probe& p = pop.shuffled(j);
        wheel.arm(p.timer, p.expiry);
      }
      in_batch = 0;
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(state.iterations());
  if (wheel.size() + in_batch != n) return fail(state, "size() does not match arms and cancels");
  pop.verify_drain(state);
}

// ---- arm + cancel churn -----------------------------------------------------

// The common case: the answer to one in-flight request arrives, its timeout
// is cancelled, and a new request's timeout is armed (1 ms..60 s ahead).
// One iteration = one cancel + one arm; the population stays exactly n and
// the clock is never paused.
void BM_ArmCancelChurn(benchmark::State& state) {
  const auto n = size_t(state.range(0));
  constexpr size_t kTimeouts = 1 << 16;  // pre-drawn so no RNG runs in the loop
  Population pop(n, 0);
  TimerWheel& wheel = pop.wheel();
  std::vector<uint64_t> expiries(kTimeouts);
  std::mt19937_64 rng(0xc4u + n);
  std::uniform_int_distribution<uint64_t> timeout(1, kMaxTimeoutMs);
  for (uint64_t& e : expiries) e = kBaseMs + timeout(rng);
  size_t pos = 0, j = 0;
  for (auto _ : state) {
    Probe& p = pop.shuffled(pos);
    wheel.cancel(p.timer);
    p.expiry = expiries[j];
    wheel.arm(p.timer, p.expiry);
    if (++pos == n) pos = 0;
    j = (j + 1) & (kTimeouts - 1);
  }
  state.SetItemsProcessed(state.iterations());
  if (wheel.size() != n) return fail(state, "size() changed under churn");
  pop.verify_drain(state);
}

// ---- expiry -----------------------------------------------------------------

// Cost per timer of one advance() over n due timers spread over 60 s (a
// loop that stalled, or a wheel catching up): cascades and callbacks
// included. The wheel is rebuilt with the clock paused before each pass.
// Time is per pass; ns_per_timer is the figure to read.
void BM_ExpireBulk(benchmark::State& state) {
  const auto n = size_t(state.range(0));
  Population pop(n, 0, /*arm_now=*/false);
  const uint64_t end = kBaseMs + kMaxTimeoutMs;
  uint64_t ns = 0;
  for (auto _ : state) {
    state.PauseTiming();
    pop.reset();
    pop.tally().reset(end);
    state.ResumeTiming();
    const uint64_t t0 = monotonic_ns();
    const size_t fired = pop.wheel().advance(end);
    ns += monotonic_ns() - t0;
    state.PauseTiming();
    const Tally& t = pop.tally();
    if (fired != n || t.fired != n || pop.wheel().size() != 0) {
      fail(state, std::to_string(n - std::min(n, t.fired)) + " due timers never fired");
      break;
    }
    if (t.early || t.out_of_order) {
      fail(state, "timers fired early or out of expiry order");
      break;
    }
    state.ResumeTiming();
  }
  if (state.error_occurred()) return;
  state.SetItemsProcessed(int64_t(state.iterations() * n));
  state.counters["ns_per_timer"] = double(ns) / double(state.iterations() * n);
}

// Cost per timer when the wheel is driven like the reactor with no sleep in
// between: advance(next_wake()) until empty. Each timer must fire exactly at
// its expiry. Includes the next_wake() calls and the cascades.
void BM_ExpireStepped(benchmark::State& state) {
  const auto n = size_t(state.range(0));
  Population pop(n, 0, /*arm_now=*/false);
  uint64_t ns = 0, advances = 0;
  for (auto _ : state) {
    state.PauseTiming();
    pop.reset();
    TimerWheel& wheel = pop.wheel();
    Tally& tally = pop.tally();
    state.ResumeTiming();
    const uint64_t t0 = monotonic_ns();
    for (uint64_t w; (w = wheel.next_wake()) != UINT64_MAX; ++advances) {
      tally.now_ms = w;
      wheel.advance(w);
    }
    ns += monotonic_ns() - t0;
    state.PauseTiming();
    if (tally.fired != n || wheel.size() != 0) {
      fail(state, std::to_string(n - std::min(n, tally.fired)) + " timers never fired");
      break;
    }
    if (tally.early || tally.inexact || tally.out_of_order) {
      fail(state, "timers fired early, late or out of expiry order");
      break;
    }
    state.ResumeTiming();
  }
  if (state.error_occurred()) return;
  state.SetItemsProcessed(int64_t(state.iterations() * n));
  state.counters["ns_per_timer"] = double(ns) / double(state.iterations() * n);
  state.counters["advances"] = double(advances) / double(state.iterations());
}

// ---- next_wake --------------------------------------------------------------

void BM_NextWake(benchmark::State& state) {
  const auto n = size_t(state.range(0));
  Population pop(n, 0);
  const TimerWheel& wheel = pop.wheel();
  const uint64_t wake = wheel.next_wake();
  if (wake == UINT64_MAX || wake > pop.min_armed_expiry())
    return fail(state, "next_wake() is later than the earliest expiry");
  for (auto _ : state) benchmark::DoNotOptimize(wheel.next_wake());
  state.SetItemsProcessed(state.iterations());
  pop.verify_drain(state);
}

// ---- lateness on the real clock ---------------------------------------------

struct LiveProbe {
  Timer timer;
  uint64_t expiry_ms = 0;
  uint64_t fired_ns = 0;  // 0 until it fires
};

void on_live_fire(void* ctx) noexcept {
  auto* p = static_cast<LiveProbe*>(ctx);
  p->fired_ns = monotonic_ns();
}

// Span over which the lateness benchmark spreads its timers; the smoke test
// shortens it through BARRAGE_BENCH_LATENCY_SPAN_MS.
uint64_t latency_span_ms() {
  const char* s = std::getenv("BARRAGE_BENCH_LATENCY_SPAN_MS");
  if (s == nullptr || *s == '\0') return 2000;
  const unsigned long long v = std::strtoull(s, nullptr, 10);
  return v == 0 ? 1 : v;
}

enum class Sleep { clock_nanosleep, ppoll };

// Sleeps until the monotonic clock reads at least wake_ns.
void sleep_until(uint64_t wake_ns, Sleep how) noexcept {
  if (how == Sleep::clock_nanosleep) {
    timespec ts{time_t(wake_ns / 1'000'000'000), long(wake_ns % 1'000'000'000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
    }
    return;
  }
  // As Engine::run_turn does with epoll_pwait2: a relative timeout in ns
  // from the time the turn computes it.
  const uint64_t now = monotonic_ns();
  if (wake_ns <= now) return;
  const uint64_t d = wake_ns - now;
  timespec ts{time_t(d / 1'000'000'000), long(d % 1'000'000'000)};
  ::ppoll(nullptr, 0, &ts, nullptr);
}

// 100,000 timers with expiries spread uniformly over the next 2 s of
// CLOCK_MONOTONIC (rounded up to the ms, as Engine::expiry_after does). The
// loop sleeps until next_wake() and then calls advance(now_ms), as the
// reactor turn does; each callback stamps the time it ran. Lateness is that
// stamp minus the start of the expiry's ms. Arg 0 sleeps with
// clock_nanosleep(TIMER_ABSTIME), arg 1 with ppoll and a relative timeout,
// which is what the reactor's epoll_pwait2/io_uring wait amounts to.
void BM_Lateness(benchmark::State& state) {
  constexpr size_t kTimers = 100'000;
  constexpr uint64_t kLeadNs = 20 * kNsPerMs;  // time to arm them all before the first is due
  const Sleep how = state.range(0) == 0 ? Sleep::clock_nanosleep : Sleep::ppoll;
  const uint64_t span_ns = latency_span_ms() * kNsPerMs;
  std::vector<LiveProbe> probes(kTimers);
  std::vector<uint64_t> offsets(kTimers);
  std::vector<uint64_t> lateness(kTimers);
  std::mt19937_64 rng(0x1a7e);
  std::uniform_int_distribution<uint64_t> offset(0, span_ns);
  for (uint64_t& o : offsets) o = offset(rng);
  for (LiveProbe& p : probes) {
    p.timer.fn = on_live_fire;
    p.timer.ctx = &p;
  }
  uint64_t wakeups = 0;
  for (auto _ : state) {
    const uint64_t start_ns = monotonic_ns();
    TimerWheel wheel(start_ns / kNsPerMs);
    const uint64_t t0 = start_ns + kLeadNs;
    for (size_t i = 0; i < kTimers; ++i) {
      LiveProbe& p = probes[i];
      p.fired_ns = 0;
      p.expiry_ms = (t0 + offsets[i] + kNsPerMs - 1) / kNsPerMs;
      wheel.arm(p.timer, p.expiry_ms);
    }
    // A broken wheel must not hang the run: give up 5 s after the last expiry.
    const uint64_t give_up_ns = t0 + span_ns + 5'000 * kNsPerMs;
    while (wheel.size() != 0) {
      const uint64_t wake_ms = wheel.next_wake();
      if (wake_ms == UINT64_MAX) break;
      sleep_until(wake_ms * kNsPerMs, how);
      const uint64_t now_ns = monotonic_ns();
      if (now_ns > give_up_ns) break;
      wheel.advance(now_ns / kNsPerMs);
      ++wakeups;
    }
    state.PauseTiming();
    size_t never = 0, early = 0;
    for (size_t i = 0; i < kTimers; ++i) {
      const LiveProbe& p = probes[i];
      const uint64_t due_ns = p.expiry_ms * kNsPerMs;
      if (p.fired_ns == 0)
        ++never;
      else if (p.fired_ns < due_ns)
        ++early;
      else
        lateness[i] = p.fired_ns - due_ns;
    }
    if (never || early) {
      fail(state, std::to_string(never) + " timers never fired, " + std::to_string(early) + " fired early");
      break;
    }
    state.ResumeTiming();
  }
  if (state.error_occurred()) return;
  std::sort(lateness.begin(), lateness.end());
  auto us = [&](double q) {
    const size_t i = std::min(kTimers - 1, size_t(q * double(kTimers)));
    return double(lateness[i]) / 1000.0;
  };
  state.counters["p50_us"] = us(0.50);
  state.counters["p99_us"] = us(0.99);
  state.counters["p99.9_us"] = us(0.999);
  state.counters["max_us"] = double(lateness.back()) / 1000.0;
  state.counters["wakeups"] = double(wakeups) / double(state.iterations());
  state.SetLabel(how == Sleep::clock_nanosleep ? "clock_nanosleep" : "ppoll");
}

void populations(benchmark::internal::Benchmark* b) {
  b->ArgName("timers")->Arg(1'000)->Arg(100'000)->Arg(1'000'000);
}

BENCHMARK(BM_Arm)->Apply(populations);
BENCHMARK(BM_Cancel)->Apply(populations);
BENCHMARK(BM_ArmCancelChurn)->Apply(populations);
BENCHMARK(BM_ExpireBulk)->Apply(populations)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ExpireStepped)->Apply(populations)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_NextWake)->Apply(populations);
BENCHMARK(BM_Lateness)->ArgName("sleep")->Arg(0)->Arg(1)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace barrage

int main(int argc, char** argv) { return barrage::bench::run_benchmarks(argc, argv); }
