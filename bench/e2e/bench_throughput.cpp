// Throughput: requests per second and client CPU per request with 100, 1,000
// and 10,000 requests in flight, against an instant answer (/) and one that
// takes 50 ms (/sleep/50), over HTTP/1.1, and over HTTP/2 at 1,000 in flight. Connections are opened by a warm-up round first, so
// no handshake is timed; then each iteration runs a fixed batch, keeping up
// to twice the in-flight limit submitted so the engine never waits on us.
#include "measure.hpp"
#include "peer.hpp"
#include "suite.hpp"

namespace barrage::e2e {
namespace {

size_t batch_size(int64_t inflight, int64_t latency_ms) {
  if (inflight >= 10'000) return 60'000;
  if (latency_ms == 0) return 30'000;
  // At 50 ms the ceiling is inflight / 0.05 s: run about a second of it.
  return inflight >= 1'000 ? 20'000 : 3'000;
}

void BM_Throughput(benchmark::State& state, brg_backend backend) {
  const int inflight = int(state.range(0));
  const int64_t latency_ms = state.range(1);
  const int http_version = int(state.range(2));
  const std::string url = peer().url(latency_ms ? "/sleep/50" : "/");
  const size_t n = scaled(batch_size(inflight, latency_ms), 100);
  auto c = open_client(state, {.backend = backend, .max_inflight = inflight, .http_version = http_version});
  if (!c) return;
  Outcome o;
  if (!run_or_fail(state, *c, {.url = url, .n = size_t(inflight)}, &o, "warm-up")) return;
  // The warm-up's last results can come before the last of its handshakes
  // (a waiting request is served by whichever connection frees first).
  c->settle(std::chrono::seconds(10));
  const uint64_t opened = c->stats().connections_opened;

  double wall_s = 0, steady_n = 0, steady_s = 0;
  int64_t cpu_us = 0, nginx_us = 0;
  size_t done = 0;
  std::vector<int64_t> service_us;
  for (auto _ : state) {
    const int64_t cpu0 = self_cpu_us(), nginx0 = peer_cpu_us();
    if (!run_or_fail(state, *c, {.url = url, .n = n, .window = 2 * size_t(inflight)}, &o, "timed batch")) return;
    cpu_us += self_cpu_us() - cpu0;
    nginx_us += peer_cpu_us() - nginx0;
    state.SetIterationTime(o.seconds());
    wall_s += o.seconds();
    done += n;
    // Steady state: completions between 10% and 90% of the batch, leaving
    // out the ramp-up (first answers) and ramp-down (last stragglers).
    const size_t lo = n / 10, hi = n - n / 10;
    steady_n += double(hi - lo);
    steady_s += double(o.done_ns[hi] - o.done_ns[lo]) / 1e9;
    service_us.insert(service_us.end(), o.service_us.begin(), o.service_us.end());
  }
  const double steady = steady_n / steady_s;
  state.counters["req_per_s"] = double(done) / wall_s;
  state.counters["steady_req_per_s"] = steady;
  state.counters["cpu_us_per_req"] = double(cpu_us) / double(done);
  // Per request, from getting an in-flight slot to its result: how far the
  // engine stretches the peer's latency at this load.
  state.counters["p50_ms"] = double(quantile(service_us, 0.5)) / 1000;
  state.counters["p99_ms"] = double(quantile(service_us, 0.99)) / 1000;
  if (latency_ms) state.counters["ceiling_frac"] = steady / (inflight * 1000.0 / double(latency_ms));
  // Expected 0: the warm-up's connections serve everything.
  state.counters["new_conns"] = double(c->stats().connections_opened - opened);
  state.counters["nginx_cpu"] = double(nginx_us) / (wall_s * 1e6);
  state.counters["conns"] = double(opened);
  state.SetLabel(std::string(backend_name(backend)) + (http_version == 2 ? " h2" : " http/1.1"));
}

// HTTP/1.1 everywhere; HTTP/2 (one connection: nginx takes 1,000 streams on
// each) at 1,000 in flight with instant answers, to compare the two in one run.
void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"inflight", "latency_ms", "http"});
  for (int64_t latency : {0, 50})
    for (int64_t inflight : {100, 1'000, 10'000}) b->Args({inflight, latency, 1});
  b->Args({1'000, 0, 2});
  b->Iterations(quick() ? 1 : 2)->UseManualTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK_CAPTURE(BM_Throughput, io_uring, BRG_BACKEND_IO_URING)->Apply(shapes);
BENCHMARK_CAPTURE(BM_Throughput, epoll, BRG_BACKEND_EPOLL)->Apply(shapes);

}  // namespace
}  // namespace barrage::e2e
