// Makespan, the comparison users ask about first: N requests that each take
// 0.5 s (/sleep/500) with C in flight, against the ideal ceil(N/C) x 0.5 s and
// against running them one after another. Sequential runs (C = 1) are
// measured for N = 10 and 20; for larger N the sequential time is computed as
// N x the measured single-request latency and the label says so. Each shape
// runs twice on one engine: cold (connections opened as the batch starts, as
// a fresh program would; only for C >= 100) and warm (the reported time).
#include "measure.hpp"
#include "peer.hpp"
#include "suite.hpp"

#include <map>
#include <utility>

namespace barrage::e2e {
namespace {

constexpr double kLatencyS = 0.5;

// Filled by BM_Sequential, read by BM_Makespan; registered in that order in
// this file, so they run in that order. When a filter leaves BM_Sequential
// out, BM_Makespan measures the single-request latency itself.
std::map<std::pair<int, int64_t>, double> g_sequential_s;  // (backend, N) -> s
std::map<int, double> g_single_s;                           // backend -> s

void BM_Sequential(benchmark::State& state, brg_backend backend) {
  const int64_t n = state.range(0);
  auto c = open_client(state, {.backend = backend, .max_inflight = 1});
  Outcome o;
  if (!c || !run_or_fail(state, *c, {.url = peer().url("/"), .n = 1}, &o, "warm-up")) return;
  for (auto _ : state) {
    if (!run_or_fail(state, *c, {.url = peer().url("/sleep/500"), .n = size_t(n)}, &o, "sequential batch")) return;
    state.SetIterationTime(o.seconds());
  }
  g_sequential_s[{backend, n}] = o.seconds();
  g_single_s[backend] = double(quantile(o.service_us, 0.5)) / 1e6;
  state.counters["makespan_s"] = o.seconds();
  state.counters["single_s"] = g_single_s[backend];
  state.SetLabel(backend_name(backend));
}

// Sequential time for N requests on this backend, and how it was obtained.
std::pair<double, std::string> sequential(benchmark::State& state, Client& c, brg_backend backend, int64_t n) {
  if (auto it = g_sequential_s.find({backend, n}); it != g_sequential_s.end()) return {it->second, "measured"};
  if (!g_single_s.count(backend)) {
    Outcome one;
    if (!run_or_fail(state, c, {.url = peer().url("/sleep/500"), .n = 1}, &one, "single request")) return {0, ""};
    g_single_s[backend] = double(one.service_us[0]) / 1e6;
  }
  return {double(n) * g_single_s[backend],
          "computed: N x " + std::to_string(int(g_single_s[backend] * 1000 + 0.5)) + " ms"};
}

void BM_Makespan(benchmark::State& state, brg_backend backend) {
  const int64_t n = state.range(0), inflight = state.range(1);
  const Batch batch{.url = peer().url("/sleep/500"), .n = size_t(n)};
  auto c = open_client(state, {.backend = backend, .max_inflight = int(inflight)});
  if (!c) return;
  // With few connections the cold run differs from the warm one by a few
  // handshakes (ms); it is only worth its time where C handshakes add up.
  const bool cold_too = inflight >= 100;
  Outcome cold, warm;
  struct brg_stats after_cold{};
  for (auto _ : state) {
    if (!run_or_fail(state, *c, cold_too ? batch : Batch{.url = peer().url("/"), .n = size_t(inflight)}, &cold,
                     cold_too ? "cold batch" : "warm-up"))
      return;
    after_cold = c->stats();
    if (!run_or_fail(state, *c, batch, &warm, "warm batch")) return;
    state.SetIterationTime(warm.seconds());
  }
  const auto [seq_s, how] = sequential(state, *c, backend, n);
  if (how.empty()) return;
  const double waves = double((n + inflight - 1) / inflight);
  const double ideal = waves * kLatencyS;
  state.counters["makespan_s"] = warm.seconds();
  if (cold_too) {
    state.counters["cold_makespan_s"] = cold.seconds();
    // How many of the cold run's connections paid for a full handshake.
    state.counters["cold_full_handshakes"] = double(after_cold.connections_opened - after_cold.tls_resumed);
  }
  state.counters["ideal_s"] = ideal;
  state.counters["vs_ideal"] = warm.seconds() / ideal;
  // Against what the peer really takes per request (nginx's 500 ms sleep
  // ends a little late), which leaves only the engine's own overhead.
  state.counters["vs_peer_ideal"] = warm.seconds() / (waves * g_single_s[backend]);
  state.counters["sequential_s"] = seq_s;
  state.counters["speedup"] = seq_s / warm.seconds();
  state.SetLabel(std::string(backend_name(backend)) + ", sequential " + how);
}

void sequential_sizes(benchmark::internal::Benchmark* b) {
  b->ArgName("n")->Arg(10)->Arg(20);
  b->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
}

void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "inflight"});
  for (int64_t n : {10, 20, 100})
    for (int64_t inflight : {5, 10}) b->Args({n, inflight});
  b->Args({10'000, 1'000});
  b->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK_CAPTURE(BM_Sequential, io_uring, BRG_BACKEND_IO_URING)->Apply(sequential_sizes);
BENCHMARK_CAPTURE(BM_Sequential, epoll, BRG_BACKEND_EPOLL)->Apply(sequential_sizes);
BENCHMARK_CAPTURE(BM_Makespan, io_uring, BRG_BACKEND_IO_URING)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Makespan, epoll, BRG_BACKEND_EPOLL)->Apply(shapes);

}  // namespace
}  // namespace barrage::e2e
