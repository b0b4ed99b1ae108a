// Google Benchmark suite for flow control, the per-request admission work on
// the reactor thread: TokenBucket (GCRA) grants, denials and ready_at(),
// RateGate::acquire() on its go and wait paths (with settle(), as each answer
// does), and the LLM-token estimate made from a request body at submit.
// BM_SharedQuotaTake is what shared limits add per request on the reactor:
// the lease's ready_at() and try_take(), and the check for a round trip. Every
// benchmark checks its verdicts against what the configured rate implies.
#include "bench_check.hpp"
#include "bench_fixtures.hpp"
#include "flow/rate_gate.hpp"
#include "flow/shared_quota.hpp"
#include "flow/token_bucket.hpp"
#include "flow/token_estimate.hpp"

#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

namespace barrage {
namespace {

using bench::fail;

// ~11.6 days of uptime, so that the 128-bit products have realistic high bits.
constexpr uint64_t kBaseNs = 1'000'000'000'000'000;
constexpr uint64_t kSecondNs = 1'000'000'000;

// ---- TokenBucket ------------------------------------------------------------

// The common case: a bucket with room. 1 unit per us, burst 1000; the clock
// moves 1 us per take, so every take is granted and the level stays at 999.
void BM_BucketGrant(benchmark::State& state) {
  TokenBucket b;
  b.configure(1'000'000, kSecondNs, 1000, kBaseNs);
  uint64_t now = kBaseNs;
  int64_t granted = 0;
  for (auto _ : state) {
    now += 1000;
    granted += b.try_take(1, now);
  }
  state.SetItemsProcessed(state.iterations());
  if (granted != int64_t(state.iterations()))
    return fail(state, "bucket grant: " + std::to_string(int64_t(state.iterations()) - granted) + " takes refused");
  if (b.available(now) != 999) return fail(state, "bucket grant: level is not 999 after the takes");
}

// A drained bucket asked again at the same instant: every take is refused.
void BM_BucketDeny(benchmark::State& state) {
  TokenBucket b;
  b.configure(1'000'000, kSecondNs, 1000, kBaseNs);
  if (!b.try_take(1000, kBaseNs)) return fail(state, "bucket deny: a full bucket refused its capacity");
  int64_t granted = 0;
  for (auto _ : state) granted += b.try_take(1, kBaseNs);
  state.SetItemsProcessed(state.iterations());
  if (granted != 0) return fail(state, "bucket deny: an empty bucket granted " + std::to_string(granted));
}

// A key driven at four times its rate: 1 unit per us, burst 1, clock 250 ns
// per try. GCRA must grant exactly every fourth try, no more, no fewer.
void BM_BucketPaced(benchmark::State& state) {
  TokenBucket b;
  b.configure(1'000'000, kSecondNs, 1, kBaseNs);
  if (!b.try_take(1, kBaseNs)) return fail(state, "bucket paced: a full bucket refused one unit");
  uint64_t now = kBaseNs;
  int64_t granted = 0;
  for (auto _ : state) {
    now += 250;
    granted += b.try_take(1, now);
  }
  state.SetItemsProcessed(state.iterations());
  const int64_t want = int64_t(state.iterations()) / 4;
  if (granted != want)
    return fail(state, "bucket paced: granted " + std::to_string(granted) + ", want " + std::to_string(want));
}

// When a drained bucket will have 300 units again: the instant the engine
// arms its key's timer for. 7 units per 3 s, so the answer needs the
// rounding-up division (300 * 3 s / 7 = 128571428571.43 ns).
void BM_BucketReadyAt(benchmark::State& state) {
  TokenBucket b;
  b.configure(7, 3 * kSecondNs, 1000, kBaseNs);
  if (!b.try_take(1000, kBaseNs)) return fail(state, "bucket ready_at: a full bucket refused its capacity");
  const uint64_t want = kBaseNs + 128'571'428'572;
  uint64_t wrong = 0;
  for (auto _ : state) {
    const uint64_t t = b.ready_at(300, kBaseNs);
    benchmark::DoNotOptimize(t);
    wrong += t != want;
  }
  state.SetItemsProcessed(state.iterations());
  if (wrong) return fail(state, "bucket ready_at: " + std::to_string(wrong) + " wrong instants");
}

// ---- RateGate ---------------------------------------------------------------

// A key limited in requests and in tokens, both far from empty: what each
// request pays at dispatch (acquire) and, with arg settle:1, also when its
// answer's usage comes back (settle). 1 request and 1000 tokens per us.
void BM_GateGo(benchmark::State& state) {
  const bool with_settle = state.range(0) != 0;
  FlowLimits limits;
  limits.requests_per_period = 1'000'000;
  limits.period_ms = 1000;
  limits.tokens_per_minute = 60'000'000'000'000;
  RateGate gate(limits, kBaseNs);
  uint64_t now = kBaseNs, retry_at = 0;
  int64_t go = 0;
  for (auto _ : state) {
    now += 1000;
    go += gate.acquire(500, now, &retry_at) == RateGate::Verdict::go;
    if (with_settle) gate.settle(500, 83, now);
  }
  state.SetItemsProcessed(state.iterations());
  if (go != int64_t(state.iterations()))
    return fail(state, "gate go: " + std::to_string(int64_t(state.iterations()) - go) + " requests not admitted");
  if (retry_at != now) return fail(state, "gate go: retry_at of a go is not now");
}

// A key whose token bucket is drained (1 token per ms, burst 1000): each
// acquire is a wait, and must name the instant 100 tokens are back.
void BM_GateWait(benchmark::State& state) {
  FlowLimits limits;
  limits.requests_per_period = 1000;
  limits.period_ms = 1000;
  limits.tokens_per_minute = 60'000;
  limits.token_burst = 1000;
  RateGate gate(limits, kBaseNs);
  uint64_t retry_at = 0;
  if (gate.acquire(1000, kBaseNs, &retry_at) != RateGate::Verdict::go)
    return fail(state, "gate wait: a fresh gate did not admit its burst");
  const uint64_t want = kBaseNs + 100 * 1'000'000;
  uint64_t wrong = 0;
  for (auto _ : state) {
    const RateGate::Verdict v = gate.acquire(100, kBaseNs, &retry_at);
    wrong += v != RateGate::Verdict::wait || retry_at != want;
  }
  state.SetItemsProcessed(state.iterations());
  if (wrong) return fail(state, "gate wait: " + std::to_string(wrong) + " verdicts not wait-until-refilled");
}

// ---- token estimate ---------------------------------------------------------

// estimate_tokens() on a chat request with a prompt of N bytes: bytes / 4
// for the prompt plus the max_tokens found after the messages.
void BM_EstimateTokens(benchmark::State& state) {
  const std::string body = bench::chat_request_body(size_t(state.range(0)));
  const int64_t want = int64_t((body.size() + 3) / 4) + bench::kMaxTokens;
  uint64_t wrong = 0;
  for (auto _ : state) {
    const int64_t n = estimate_tokens(body);
    benchmark::DoNotOptimize(n);
    wrong += n != want;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(int64_t(state.iterations() * body.size()));
  state.counters["body_bytes"] = double(body.size());
  if (wrong) return fail(state, "estimate_tokens: " + std::to_string(wrong) + " estimates differ from " + std::to_string(want));
}

// ---- SharedQuota (BRG_OPT_SHARED_LIMITS) -------------------------------------

// A shared key's per-request work on top of RateGate::acquire: ready_at()
// and try_take() on the lease, then ask() (which SharedLimits::poke calls
// after every take) to see whether a round trip is due; when one is, it is
// answered at once with the lease asked for (so answered() is counted,
// amortised over the lease). 1 request per us, 4 live processes; the clock
// moves 1 us per take, so each take finds its unit due.
void BM_SharedQuotaTake(benchmark::State& state) {
  FlowLimits limits;
  limits.requests_per_period = 4'000'000;
  limits.period_ms = 1000;
  limits.request_burst = 1000;
  SharedQuota q(limits, SharedTuning{}, kBaseNs);
  uint64_t now = kBaseNs;
  int64_t go = 0, trips = 0;
  auto answer = [&](const LeaseAsk& a) {
    LeaseAnswer ans;
    ans.requests = a.requests.max;
    ans.requests_base_us = 0;  // unit j due j * 0.25 us from now
    ans.live = 4;
    ans.anchor_ns = now;
    ans.rtt_ns = 100000;
    q.answered(ans, now);
    ++trips;
  };
  if (auto a = q.ask(1, 0, now)) answer(*a);
  for (auto _ : state) {
    now += 1000;
    if (q.ready_at(0, now) <= now && q.try_take(0, now)) ++go;
    if (auto a = q.ask(1, 0, now)) answer(*a);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["round_trips_per_1000"] = 1000.0 * double(trips) / double(state.iterations());
  if (go != int64_t(state.iterations()))
    return fail(state, "shared take: " + std::to_string(int64_t(state.iterations()) - go) + " requests not admitted");
}

BENCHMARK(BM_BucketGrant);
BENCHMARK(BM_BucketDeny);
BENCHMARK(BM_BucketPaced);
BENCHMARK(BM_BucketReadyAt);
BENCHMARK(BM_GateGo)->ArgName("settle")->Arg(0)->Arg(1);
BENCHMARK(BM_GateWait);
BENCHMARK(BM_SharedQuotaTake);
BENCHMARK(BM_EstimateTokens)->ArgName("prompt_bytes")->Arg(40)->Arg(4 << 10)->Arg(64 << 10);

}  // namespace
}  // namespace barrage

int main(int argc, char** argv) { return barrage::bench::run_benchmarks(argc, argv); }
