// Streaming at scale over HTTP/2 (issue 16, items 3 and 4): thousands to
// 100,000 concurrent server-sent-event streams in one inline-mode engine,
// against sse_h2_server (its own process, pinned to the second CPU, this one
// to the first), which sends each stream <events> OpenAI chunk events
// <interval_ms> apart, 100 (or 10) streams per connection; with step_ms > 0
// a connection's events leave together at multiples of it (a decode step).
//
// The server shares this 2-core machine and costs about what the client
// does per event (2.7-3.4 us when ~20 events share a write, ~10 us at ~2,
// ~20 us written alone: server_cpu_us_per_event), so 100,000 events/s keep
// both cores 85-90 % busy; that is as far as this machine goes. Client
// figures are this thread's own CPU time, never the process's or the
// machine's.
//
// Reported per run (one iteration; use --benchmark_repetitions for medians):
//  - cpu_us_per_event: this thread's CPU time (CLOCK_THREAD_CPUTIME_ID; the
//    engine runs inside brg_poll on it) from the first submit to the last
//    result, over the data events delivered; steady_cpu_us_per_event the same
//    over the window in which every stream is past its first event and none
//    has reached its last (per-stream setup and teardown left out);
//    setup_cpu_us_per_stream what submit, connect and the first event cost
//    over the steady rate. server_cpu_us_per_event: sse_h2_server's CPU
//    (/proc, 10 ms ticks) over the same events: what the other core paid.
//  - late_p50/p99/max_us: event delivery lateness, the time from the server
//    writing the event into its connection (CLOCK_MONOTONIC stamped in the
//    event as "t_ns", the same clock here on one host) to this thread taking
//    its result from brg_results. It includes loopback transit, so it bounds
//    from above the time from the event's arrival on our socket.
//  - turn_p99_us/turn_max_us/turns_over_5ms: loop turn length. The loop waits
//    outside the engine (poll on brg_backend_fd, brg_backend_timeout), then
//    times brg_poll(e, 0): one turn's work with no waiting in it.
//  - steady_late_* and steady_turn_*: the same inside the steady window only
//    (the ramp, when all streams are submitted in one call and 1,000
//    connections open, is in the others).
//  - client_cpu_busy_pct / server_cpu_busy_pct: how busy the two pinned CPUs
//    were over the run (/proc/stat), and *_others_pct the part that was
//    neither this thread nor the server (other programs on a shared machine;
//    softirq work charged to nobody): a run whose CPUs were saturated by
//    others says so instead of blaming the engine for late events.
//  - rss_peak_mib (VmHWM, reset before the engine is made), rss_per_stream_kib
//    and heap_per_stream_kib ((peak RSS, or malloc's bytes in use in the
//    steady window) minus the same before the engine, over the streams),
//    conns (connections opened).
// Every stream must end BRG_OK with exactly <events> events, in order; a
// wrong result or a stream not done in time fails the run (exit 1).
#include <barrage.h>
#include <malloc.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "../e2e/measure.hpp"
#include "suite.hpp"
#include "stream_peer.hpp"

namespace barrage::streams {
namespace {

using e2e::now_ns;
using e2e::rss_bytes;

int64_t thread_cpu_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Samples in 10 µs buckets up to 2 s (the last bucket takes the rest): a
// histogram instead of a vector, so that millions of samples cost this
// process 800 KB, not tens of MB of the RSS being measured.
class Histogram {
 public:
  Histogram() : counts_(kBuckets, 0) {}
  void add(int64_t ns) noexcept {
    const int64_t b = std::clamp<int64_t>(ns / 10'000, 0, kBuckets - 1);
    ++counts_[size_t(b)];
    ++n_;
    max_ = std::max(max_, ns);
  }
  // The upper edge of the bucket holding the q-quantile, in µs.
  double quantile_us(double q) const noexcept {
    if (n_ == 0) return 0;
    const uint64_t rank = uint64_t(q * double(n_ - 1)) + 1;
    uint64_t seen = 0;
    for (size_t b = 0; b < counts_.size(); ++b)
      if ((seen += counts_[b]) >= rank) return double(b + 1) * 10;
    return double(kBuckets) * 10;
  }
  uint64_t above(int64_t ns) const noexcept {
    uint64_t k = 0;
    for (size_t b = size_t(ns / 10'000); b < counts_.size(); ++b) k += counts_[b];
    return k;
  }
  double max_us() const noexcept { return double(max_) / 1e3; }
  uint64_t count() const noexcept { return n_; }

 private:
  static constexpr int64_t kBuckets = 200'000;
  std::vector<uint32_t> counts_;
  uint64_t n_ = 0;
  int64_t max_ = 0;
};

int64_t heap_in_use() noexcept {
  const struct mallinfo2 m = mallinfo2();
  return int64_t(m.uordblks + m.hblkhd);
}

// Resets VmHWM to the current RSS ("5" to clear_refs), so that the peak read
// later is this run's and not an earlier benchmark's.
void reset_peak_rss() noexcept {
  if (FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    std::fputs("5", f);
    std::fclose(f);
  }
}

int64_t peak_rss_bytes() noexcept {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long long kb = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmHWM: %lld kB", &kb) == 1) break;
  std::fclose(f);
  return kb < 0 ? -1 : kb * 1024;
}

// Busy time (everything but idle and iowait) of one CPU so far, in µs, from
// /proc/stat (clock ticks); -1 when unknown.
int64_t cpu_busy_us(int cpu) noexcept {
  if (cpu < 0) return -1;
  FILE* f = std::fopen("/proc/stat", "r");
  if (!f) return -1;
  char want[16], line[512];
  std::snprintf(want, sizeof want, "cpu%d ", cpu);
  int64_t busy = -1;
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, want, std::strlen(want)) != 0) continue;
    unsigned long long v[8] = {};
    if (std::sscanf(line + std::strlen(want), "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                    &v[4], &v[5], &v[6], &v[7]) == 8)
      busy = int64_t(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) * 1'000'000 / sysconf(_SC_CLK_TCK);
    break;
  }
  std::fclose(f);
  return busy;
}

// The server's stamp at the end of an event's data: ..."t_ns":N}
int64_t stamp_of(std::string_view body) noexcept {
  const size_t at = body.rfind("\"t_ns\":");
  if (at == std::string_view::npos) return -1;
  int64_t v = 0;
  for (size_t i = at + 7; i < body.size() && body[i] >= '0' && body[i] <= '9'; ++i) v = v * 10 + (body[i] - '0');
  return v;
}

struct Engine {
  std::unique_ptr<brg_engine, void (*)(brg_engine*)> e{nullptr, brg_engine_free};
};

void BM_Streams(benchmark::State& state, brg_backend backend) {
  const int streams = int(state.range(0));
  const uint32_t per_conn = uint32_t(state.range(1));
  const int events = int(state.range(2));
  const int interval_ms = int(state.range(3));
  const int step_ms = int(state.range(4));
  // body 1: the final results carry the raw event stream (barrage.h's
  // default); 0: BRG_REQ_NO_STREAM_BODY, what a caller who takes the
  // partials would set, and the memory a stream then costs.
  const bool keep_body = state.range(5) != 0;
  const std::string url = stream_peer().url(per_conn, events, interval_ms, step_ms), body = "{}";
  if (url.empty()) return fail(state, "no listener for " + std::to_string(per_conn) + " streams per connection");

  Histogram late, turns, late_steady, turns_steady;  // all; inside the steady window
  std::vector<uint32_t> got(size_t(streams), 0);  // events seen per stream (user_data = index)
  for (auto _ : state) {
    malloc_trim(0);
    reset_peak_rss();
    const int64_t rss0 = rss_bytes(), heap0 = heap_in_use();
    const int64_t server0 = e2e::proc_cpu_us(stream_peer().pid);
    const int64_t busy_c0 = cpu_busy_us(stream_peer().client_cpu), busy_s0 = cpu_busy_us(stream_peer().server_cpu);
    const int64_t cpu0 = thread_cpu_ns(), t0 = now_ns();

    brg_config* cfg = brg_config_new();
    brg_config_set_int(cfg, BRG_OPT_BACKEND, backend);
    brg_config_set_int(cfg, BRG_OPT_MAX_INFLIGHT, streams);
    brg_config_set_int(cfg, BRG_OPT_HTTP_VERSION, 2);
    brg_config_set_int(cfg, BRG_OPT_MAX_RETRIES, 0);
    brg_config_set_int(cfg, BRG_OPT_TIMEOUT_MS, int64_t(events) * interval_ms + 120'000);
    brg_config_set_str(cfg, BRG_OPT_CA_FILE, stream_peer().ca_file.c_str());
    brg_engine* raw = nullptr;
    const int rc = brg_engine_new(cfg, &raw);
    brg_config_free(cfg);
    if (rc != 0) return fail(state, std::string("brg_engine_new: ") + brg_last_error());
    Engine eng;
    eng.e.reset(raw);
    brg_engine* e = raw;

    for (int i = 0; i < streams; ++i) {
      brg_request r{};
      r.size = sizeof r;
      r.flags = BRG_REQ_STREAM | (keep_body ? 0u : BRG_REQ_NO_STREAM_BODY);
      r.url = url.c_str();
      r.body = body.data();
      r.body_len = body.size();
      r.max_retries = -1;
      r.user_data = uint64_t(i);
      if (brg_submit(e, &r, nullptr) != 0) return fail(state, std::string("submit: ") + brg_last_error());
    }

    const uint64_t total_events = uint64_t(streams) * uint64_t(events);
    // The steady window: from every stream having had its first event to the
    // first stream having had its last (nothing starts or ends inside it).
    uint64_t delivered = 0, started = 0, window_events0 = 0, window_events1 = 0;
    int64_t window_cpu0 = -1, window_cpu1 = -1, ramp_ns = -1, heap_steady = -1;
    int finals = 0;
    const int64_t give_up = t0 + (int64_t(events) * interval_ms + 60'000) * 1'000'000;
    const int fd = brg_backend_fd(e);
    // BARRAGE_STREAMS_TRACE=1: one line a second on stderr (events, the
    // latest lateness, the longest turn, this thread's CPU share, RSS), to
    // see when a run falls behind.
    const bool trace = std::getenv("BARRAGE_STREAMS_TRACE") != nullptr;
    // BARRAGE_STREAMS_INNER_WAIT=1: brg_poll(e, timeout) waits itself (the
    // turn figures then include the wait), to tell a late wake-up through
    // brg_backend_fd from a slow turn.
    const bool inner_wait = std::getenv("BARRAGE_STREAMS_INNER_WAIT") != nullptr;
    int64_t trace_at = t0 + 1'000'000'000, trace_cpu = cpu0, trace_turn = 0, trace_late = 0;
    uint64_t trace_events = 0;
    // Worst lateness per 100 consecutive streams (about one connection's)
    // in the last second: a few starved connections show here and in the p99.
    std::vector<int64_t> group_late(trace ? size_t(streams) / 100 + 1 : 0, 0);
    std::fill(got.begin(), got.end(), 0);
    std::string problem;
    while (finals < streams && problem.empty()) {
      if (now_ns() > give_up) {
        problem = std::to_string(streams - finals) + " streams not done in time";
        break;
      }
      int timeout = brg_backend_timeout(e);
      if (timeout < 0 || timeout > 100) timeout = 100;
      pollfd p{fd, POLLIN, 0};
      if (timeout > 0 && !inner_wait) ::poll(&p, 1, timeout);
      const int64_t a = now_ns();
      if (brg_poll(e, inner_wait ? timeout : 0) < 0) {
        problem = std::string("brg_poll: ") + brg_last_error();
        break;
      }
      const int64_t turn = now_ns() - a;
      trace_turn = std::max(trace_turn, turn);
      if (trace && now_ns() >= trace_at) {
        const int64_t c = thread_cpu_ns();
        size_t slow = 0, worst = 0;
        for (size_t g = 0; g < group_late.size(); ++g) {
          if (group_late[g] > 100'000'000) ++slow;
          if (group_late[g] > group_late[worst]) worst = g;
        }
        std::fprintf(stderr,
                     "t=%.0fs events=%llu late_last=%.1fms turn_max=%.1fms cpu=%.0f%% rss=%.0fMiB "
                     "groups_over_100ms=%zu worst_group=%zu (%.0fms)\n",
                     double(trace_at - t0) / 1e9, (unsigned long long)(delivered - trace_events), double(trace_late) / 1e6,
                     double(trace_turn) / 1e6, double(c - trace_cpu) / 1e7, double(rss_bytes()) / (1 << 20), slow, worst,
                     group_late.empty() ? 0.0 : double(group_late[worst]) / 1e6);
        std::fill(group_late.begin(), group_late.end(), 0);
        trace_at += 1'000'000'000, trace_cpu = c, trace_turn = 0, trace_events = delivered;
      }
      turns.add(turn);
      const bool in_window = window_cpu0 >= 0 && window_cpu1 < 0;
      if (in_window) turns_steady.add(turn);
      brg_result* out[512];
      size_t n;
      while ((n = brg_results(e, out, 512)) > 0) {
        const int64_t taken = now_ns();
        for (size_t i = 0; i < n; ++i) {
          const brg_result& r = *out[i];
          uint32_t& g = got[size_t(r.user_data)];
          if (r.flags & BRG_RES_PARTIAL) {
            const int64_t stamp = stamp_of(std::string_view(r.body, r.body_len));
            if (stamp <= 0 || r.events != g + 1) problem = "a partial out of order or without its stamp";
            late.add(taken - stamp);
            trace_late = taken - stamp;
            if (trace) {
              int64_t& gl = group_late[size_t(r.user_data) / 100];
              gl = std::max(gl, taken - stamp);
            }
            if (in_window) late_steady.add(taken - stamp);
            if (g++ == 0 && ++started == uint64_t(streams)) ramp_ns = taken - t0;
            ++delivered;
          } else {
            ++finals;
            if (r.status != BRG_OK || r.events != uint32_t(events) || g != uint32_t(events))
              problem = std::string("a stream ended with ") + brg_status_name(r.status) + " after " +
                        std::to_string(r.events) + " events: " + r.error;
            else if ((r.body_len != 0) != keep_body)
              problem = keep_body ? "a final result without the raw stream" : "a final result kept the raw stream";
            if (window_cpu0 >= 0 && window_cpu1 < 0) {  // the first end closes the window
              window_cpu1 = thread_cpu_ns();
              window_events1 = delivered;
            }
          }
          brg_result_free(out[i]);
        }
        // Opens once every stream has had its first event (and the last
        // events of the first streams are not due yet).
        if (window_cpu0 < 0 && started == uint64_t(streams) && events >= 3) {
          window_cpu0 = thread_cpu_ns();
          window_events0 = delivered;
          heap_steady = heap_in_use();
        }
      }
    }
    const int64_t cpu_ns = thread_cpu_ns() - cpu0, wall_ns = now_ns() - t0;
    const int64_t server_us = e2e::proc_cpu_us(stream_peer().pid) - server0;
    const int64_t busy_c = cpu_busy_us(stream_peer().client_cpu) - busy_c0;
    const int64_t busy_s = cpu_busy_us(stream_peer().server_cpu) - busy_s0;
    const int64_t rss_peak = peak_rss_bytes();
    struct brg_stats s{};
    s.size = sizeof s;
    brg_stats(e, &s);
    if (!problem.empty()) return fail(state, problem);
    if (delivered != total_events) return fail(state, "events lost");

    const double win_events = double(window_events1 - window_events0);
    const double steady = window_cpu1 > window_cpu0 && win_events > 0 ? double(window_cpu1 - window_cpu0) / 1e3 / win_events : 0;
    state.counters["cpu_us_per_event"] = double(cpu_ns) / 1e3 / double(delivered);
    state.counters["steady_cpu_us_per_event"] = steady;
    state.counters["setup_cpu_us_per_stream"] = (double(cpu_ns) / 1e3 - steady * double(delivered)) / streams;
    state.counters["server_cpu_us_per_event"] = double(server_us) / double(delivered);
    state.counters["late_p50_us"] = late.quantile_us(0.5);
    state.counters["late_p99_us"] = late.quantile_us(0.99);
    state.counters["late_max_us"] = late.max_us();
    state.counters["steady_late_p99_us"] = late_steady.quantile_us(0.99);
    state.counters["steady_late_max_us"] = late_steady.max_us();
    state.counters["steady_turn_p99_us"] = turns_steady.quantile_us(0.99);
    state.counters["steady_turn_max_us"] = turns_steady.max_us();
    state.counters["turn_p99_us"] = turns.quantile_us(0.99);
    state.counters["turn_max_us"] = turns.max_us();
    state.counters["turns_over_5ms"] = double(turns.above(5'000'000));
    state.counters["ramp_ms"] = double(ramp_ns) / 1e6;
    state.counters["wall_s"] = double(wall_ns) / 1e9;
    state.counters["rss_peak_mib"] = double(rss_peak) / (1 << 20);
    state.counters["rss_per_stream_kib"] = double(rss_peak - rss0) / 1024 / streams;
    state.counters["heap_per_stream_kib"] = heap_steady > 0 ? double(heap_steady - heap0) / 1024 / streams : 0;
    state.counters["conns"] = double(s.connections_opened);
    // How busy the two CPUs were, and with what else than the client thread
    // and the server: another program on them makes turns long and events late.
    if (busy_c0 >= 0 && busy_s0 >= 0) {
      const double wall_us = double(wall_ns) / 1e3;
      state.counters["client_cpu_busy_pct"] = 100.0 * double(busy_c) / wall_us;
      state.counters["client_cpu_others_pct"] = 100.0 * (double(busy_c) - double(cpu_ns) / 1e3) / wall_us;
      state.counters["server_cpu_busy_pct"] = 100.0 * double(busy_s) / wall_us;
      state.counters["server_cpu_others_pct"] = 100.0 * (double(busy_s) - double(server_us)) / wall_us;
    }
    state.counters["events"] = double(delivered);
    state.SetLabel(std::string(backend == BRG_BACKEND_EPOLL ? "epoll" : "io_uring") + " h2 " +
                   std::to_string(per_conn) + "/conn" + (keep_body ? " body" : ""));
  }
}

// Item 3: CPU per event and lateness at 10,000 streams, at three loads: 10
// events a second each (100,000/s) leaving in 20 ms decode steps (about 20
// events per connection write), 1 a second (10,000/s) in 20 ms steps (about
// 2 per write), and 1 a second each written alone (no step); the first load
// once more with the raw stream kept in the final results.
void scale(benchmark::internal::Benchmark* b) {
  b->ArgNames({"streams", "per_conn", "events", "interval_ms", "step_ms", "body"});
  if (quick()) b->Args({1'000, 100, 5, 100, 0, 0});
  else
    b->Args({10'000, 100, 30, 100, 20, 0})
        ->Args({10'000, 100, 30, 100, 20, 1})
        ->Args({10'000, 100, 20, 1'000, 20, 0})
        ->Args({10'000, 100, 20, 1'000, 0, 0});
  b->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();
}

// Item 4: 100,000 streams (1,000 connections x 100), one event a second for
// 60 s in 20 ms decode steps; and 10,000 streams at 100 and at 10 per
// connection, whose memory difference splits it into per-stream and
// per-connection parts.
void many(benchmark::internal::Benchmark* b) {
  b->ArgNames({"streams", "per_conn", "events", "interval_ms", "step_ms", "body"});
  if (quick()) b->Args({10'000, 100, 5, 200, 20, 0});
  else
    b->Args({100'000, 100, 60, 1'000, 20, 0})
        ->Args({10'000, 100, 10, 1'000, 20, 0})
        ->Args({10'000, 10, 10, 1'000, 20, 0});
  b->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();
}

// BARRAGE_STREAMS_SHAPE=streams,per_conn,events,interval_ms,step_ms[,body] adds
// one more shape (io_uring and epoll), for profiling or trying a size.
void custom(benchmark::internal::Benchmark* b) {
  b->ArgNames({"streams", "per_conn", "events", "interval_ms", "step_ms", "body"});
  long long v[6] = {0, 0, 0, 0, 0, 0};
  const char* shape = std::getenv("BARRAGE_STREAMS_SHAPE");
  if (shape && std::sscanf(shape, "%lld,%lld,%lld,%lld,%lld,%lld", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) >= 5)
    b->Args({v[0], v[1], v[2], v[3], v[4], v[5]});
  b->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();
}

BENCHMARK_CAPTURE(BM_Streams, custom_io_uring, BRG_BACKEND_IO_URING)->Apply(custom);
BENCHMARK_CAPTURE(BM_Streams, custom_epoll, BRG_BACKEND_EPOLL)->Apply(custom);
BENCHMARK_CAPTURE(BM_Streams, scale_io_uring, BRG_BACKEND_IO_URING)->Apply(scale);
BENCHMARK_CAPTURE(BM_Streams, scale_epoll, BRG_BACKEND_EPOLL)->Apply(scale);
BENCHMARK_CAPTURE(BM_Streams, many_io_uring, BRG_BACKEND_IO_URING)->Apply(many);

}  // namespace
}  // namespace barrage::streams
