// Memory per open TLS connection: N requests to /sleep/1000 with N in flight
// open N connections at once (the pool connects a few hundred per ms of a
// turn, so all 10,000 sockets exist long before the first answer; with
// /sleep/50 an early answer's connection served a request still waiting for
// its connect); once they are answered the N connections sit
// idle in the pool (the idle timeout is far away) and resident memory is read
// from /proc/self/statm. The figure is (RSS now - RSS before) / N. Kernel
// socket buffers are not part of RSS and not counted.
#include "measure.hpp"
#include "peer.hpp"
#include "suite.hpp"

#include <malloc.h>

namespace barrage::e2e {
namespace {

constexpr double kKiB = 1024.0;

void BM_RssPerConnection(benchmark::State& state, brg_backend backend) {
  const int n = int(state.range(0));
  const std::string url = peer().url("/sleep/1000");
  Outcome o;
  {
    // Process-wide one-time set-up (OpenSSL's tables, the resolver, the
    // allocator's arenas) happens on an engine of its own, so it is not
    // charged to the N connections.
    auto c = open_client(state, {.backend = backend, .max_inflight = 1});
    if (!c || !run_or_fail(state, *c, {.url = url, .n = 1}, &o, "set-up engine")) return;
  }
  auto c = open_client(state, {.backend = backend, .max_inflight = n, .idle_timeout_ms = 3'600'000});
  if (!c) return;
  for (auto _ : state) {
    // Hand memory freed by earlier benchmarks back to the kernel, so that
    // the N connections cannot hide in it.
    malloc_trim(0);
    const int64_t before = rss_bytes();
    if (!run_or_fail(state, *c, {.url = url, .n = size_t(n)}, &o, "opening the connections")) return;
    // Connections the pool opened for requests an earlier connection then
    // served (the handshake gate holds some back) finish their handshakes.
    if (!c->settle(std::chrono::seconds(30))) return fail(state, "connections still busy after 30 s");
    const int64_t after = rss_bytes();
    const struct brg_stats st = c->stats();
    if (st.connections_opened != uint64_t(n) || st.connections_idle != uint64_t(n))
      return fail(state, "opened " + std::to_string(st.connections_opened) + " connections, " +
                             std::to_string(st.connections_idle) + " idle (want " + std::to_string(n) + " and " +
                             std::to_string(n) + ")");
    // What remains once freed memory is returned: the connections' live
    // state alone, without the request buffers the allocator kept.
    malloc_trim(0);
    const int64_t trimmed = rss_bytes();
    state.SetIterationTime(o.seconds());
    state.counters["kib_per_conn"] = double(after - before) / kKiB / n;
    state.counters["kib_per_conn_trimmed"] = double(trimmed - before) / kKiB / n;
    state.counters["rss_before_mib"] = double(before) / kKiB / kKiB;
    state.counters["rss_after_mib"] = double(after) / kKiB / kKiB;
    state.counters["full_handshakes"] = double(st.connections_opened - st.tls_resumed);
  }
  state.SetLabel(backend_name(backend));
}

void sizes(benchmark::internal::Benchmark* b) {
  b->ArgName("conns")->Arg(1'000)->Arg(10'000);
  b->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK_CAPTURE(BM_RssPerConnection, io_uring, BRG_BACKEND_IO_URING)->Apply(sizes);
BENCHMARK_CAPTURE(BM_RssPerConnection, epoll, BRG_BACKEND_EPOLL)->Apply(sizes);

}  // namespace
}  // namespace barrage::e2e
