// Streaming: how exactly the engine times the first token and the gaps
// between tokens of server-sent events, against nginx's /sse, which sends a
// role event at once and then " a" .. " e" exactly 100 ms apart (echo_sleep).
// The error of time-to-first-token is (ttft - ttfb) - 100 ms: what the
// engine adds to what the server did. Streams run 1, 100 and 1,000 at once,
// over HTTP/1.1 and HTTP/2, on both backends.
#include <barrage.h>

#include <algorithm>
#include <memory>

#include "measure.hpp"
#include "peer.hpp"
#include "suite.hpp"

namespace barrage::e2e {
namespace {

constexpr int64_t kPaceUs = 100'000;  // nginx_peer.py: echo_sleep 0.100 between events
constexpr uint32_t kEvents = 8;       // role, five tokens, finish, usage

void BM_FirstToken(benchmark::State& state, brg_backend backend) {
  const int version = int(state.range(0));
  const int streams = int(state.range(1));
  brg_config* cfg = brg_config_new();
  brg_config_set_int(cfg, BRG_OPT_BACKEND, backend);
  brg_config_set_int(cfg, BRG_OPT_MAX_INFLIGHT, streams);
  brg_config_set_int(cfg, BRG_OPT_HTTP_VERSION, version);
  brg_config_set_int(cfg, BRG_OPT_MAX_RETRIES, 0);
  brg_config_set_str(cfg, BRG_OPT_CA_FILE, peer().ca.c_str());
  brg_engine* raw = nullptr;
  int rc = brg_engine_new(cfg, &raw);
  brg_config_free(cfg);
  if (rc != 0) return fail(state, std::string("brg_engine_new: ") + brg_last_error());
  std::unique_ptr<brg_engine, void (*)(brg_engine*)> e(raw, brg_engine_free);
  const std::string url = peer().url("/sse"), body = "{}";

  std::vector<int64_t> ttft_err, gap_err;
  int64_t cpu_us = 0;
  uint64_t events = 0;
  for (auto _ : state) {
    for (int i = 0; i < streams; ++i) {
      brg_request r{};
      r.size = sizeof r;
      r.flags = BRG_REQ_STREAM;
      r.url = url.c_str();
      r.body = body.data();
      r.body_len = body.size();
      r.max_retries = -1;
      if (brg_submit(e.get(), &r, nullptr) != 0) return fail(state, std::string("submit: ") + brg_last_error());
    }
    const int64_t cpu0 = self_cpu_us(), give_up = now_ns() + int64_t(30e9);
    int finals = 0;
    while (finals < streams) {
      if (now_ns() > give_up) return fail(state, "streams did not finish within 30 s");
      brg_poll(e.get(), 100);
      brg_result* out[256];
      size_t n;
      while ((n = brg_results(e.get(), out, 256)) > 0) {
        for (size_t i = 0; i < n; ++i) {
          const brg_result& r = *out[i];
          if (r.flags & BRG_RES_PARTIAL) {
            ++events;
          } else {
            ++finals;
            if (r.status != BRG_OK || r.events != kEvents || r.ttft_us < 0) {
              std::string why = std::string("stream ended with ") + brg_status_name(r.status) + " after " +
                                std::to_string(r.events) + " events: " + r.error;
              for (size_t j = i; j < n; ++j) brg_result_free(out[j]);
              return fail(state, why);
            }
            ttft_err.push_back(r.ttft_us - r.ttfb_us - kPaceUs);
            gap_err.push_back(r.gap_mean_us - kPaceUs);
          }
          brg_result_free(out[i]);
        }
      }
    }
    cpu_us += self_cpu_us() - cpu0;
  }
  struct brg_stats s{};
  s.size = sizeof s;
  brg_stats(e.get(), &s);
  state.counters["ttft_err_p50_us"] = double(quantile(ttft_err, 0.5));
  state.counters["ttft_err_p99_us"] = double(quantile(ttft_err, 0.99));
  state.counters["ttft_err_min_us"] = double(ttft_err.front());
  state.counters["ttft_err_max_us"] = double(ttft_err.back());
  state.counters["gap_err_p50_us"] = double(quantile(gap_err, 0.5));
  state.counters["gap_err_max_us"] = double(gap_err.back());
  state.counters["cpu_us_per_event"] = events ? double(cpu_us) / double(events) : 0;
  state.counters["conns"] = double(s.connections_opened);
  state.SetLabel(std::string(backend_name(backend)) + (version == 2 ? " h2" : " http/1.1"));
}

void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"http", "streams"});
  for (int64_t version : {1, 2})
    for (int64_t streams : {1, 100, 1'000}) b->Args({version, streams});
  b->Iterations(quick() ? 1 : 3)->Unit(benchmark::kMillisecond);
}

BENCHMARK_CAPTURE(BM_FirstToken, io_uring, BRG_BACKEND_IO_URING)->Apply(shapes);
BENCHMARK_CAPTURE(BM_FirstToken, epoll, BRG_BACKEND_EPOLL)->Apply(shapes);

}  // namespace
}  // namespace barrage::e2e
