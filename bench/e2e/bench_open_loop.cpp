// Open loop: requests submitted at a fixed rate (20,000/s) below what nginx
// can serve, to /sleep/50, so about 1,000 are in flight; client CPU per
// request over HTTP/1.1 (a connection per request in flight) and HTTP/2
// (nginx allows 1,000 streams per connection). At saturation
// nginx's core limits both and CPU per request says little; at a rate both
// sustain it shows what each protocol costs the client (issue 16: HTTP/2 at
// most 0.6x HTTP/1.1).
#include "measure.hpp"
#include "peer.hpp"
#include "suite.hpp"

namespace barrage::e2e {
namespace {

constexpr int kInflight = 1'000;

void BM_OpenLoop(benchmark::State& state, brg_backend backend) {
  const double rate = double(state.range(0));
  const int http_version = int(state.range(1));
  const std::string url = peer().url("/sleep/50");
  const size_t n = scaled(size_t(rate) * 2, 200);  // two seconds of offered load
  const int conns = int(state.range(2));  // 0: the engine's choice; 1: one HTTP/2 connection
  auto c = open_client(state,
                       {.backend = backend, .max_inflight = 2 * kInflight, .max_conns_per_host = conns, .http_version = http_version});
  if (!c) return;
  Outcome o;
  // Connections for the load first (HTTP/1.1 needs ~1,000 of them, more in
  // the bursts an open loop has), so no handshake is timed.
  if (!run_or_fail(state, *c, {.url = url, .n = size_t(2 * kInflight)}, &o, "warm-up")) return;
  c->settle(std::chrono::seconds(10));
  const uint64_t opened = c->stats().connections_opened;

  int64_t cpu_us = 0;
  double wall_s = 0;
  size_t done = 0;
  std::vector<int64_t> service_us;
  for (auto _ : state) {
    const int64_t cpu0 = self_cpu_us();
    if (!run_or_fail(state, *c, {.url = url, .n = n, .window = 2 * size_t(kInflight), .rate_per_s = rate}, &o,
                     "open-loop batch"))
      return;
    cpu_us += self_cpu_us() - cpu0;
    state.SetIterationTime(o.seconds());
    wall_s += o.seconds();
    done += n;
    service_us.insert(service_us.end(), o.service_us.begin(), o.service_us.end());
  }
  state.counters["offered_per_s"] = rate;
  state.counters["req_per_s"] = double(done) / wall_s;
  state.counters["cpu_us_per_req"] = double(cpu_us) / double(done);
  state.counters["p50_ms"] = double(quantile(service_us, 0.5)) / 1000;
  state.counters["p99_ms"] = double(quantile(service_us, 0.99)) / 1000;
  state.counters["conns"] = double(opened);
  state.counters["new_conns"] = double(c->stats().connections_opened - opened);
  state.SetLabel(std::string(backend_name(backend)) + (http_version == 2 ? " h2" : " http/1.1"));
}

// HTTP/2 three times: with the connections the engine opens (it opens for
// 100 streams each until SETTINGS arrive, so the warm-up's 2,000 requests
// leave 20), held to 8 (what a server with the common 128 streams per
// connection would need) and to one (MAX_CONNS_PER_HOST=1), which costs the
// least CPU per request and the most latency: what the connection count
// costs, taken apart.
void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"rate", "http", "conns"});
  b->Args({20'000, 1, 0})->Args({20'000, 2, 0})->Args({20'000, 2, 8})->Args({20'000, 2, 1});
  b->Iterations(quick() ? 1 : 3)->UseManualTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK_CAPTURE(BM_OpenLoop, io_uring, BRG_BACKEND_IO_URING)->Apply(shapes);
BENCHMARK_CAPTURE(BM_OpenLoop, epoll, BRG_BACKEND_EPOLL)->Apply(shapes);

}  // namespace
}  // namespace barrage::e2e
