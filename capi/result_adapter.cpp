// ResultHolder, ResultStore and copy_stats.
#include "result_adapter.hpp"

#include <algorithm>
#include <cstring>
#include <new>

namespace barrage::capi {

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"  // offsetof on a non-standard-layout holder is fine on GCC/Clang

ResultHolder* ResultHolder::from_outcome(Outcome* o) noexcept {
  return reinterpret_cast<ResultHolder*>(reinterpret_cast<char*>(o) - offsetof(ResultHolder, out));
}

Outcome* ResultStore::make() noexcept {
  auto* h = new (std::nothrow) ResultHolder;
  return h ? &h->out : nullptr;
}

void ResultStore::destroy(Outcome* o) noexcept { delete ResultHolder::from_outcome(o); }

#pragma GCC diagnostic pop

void ResultHolder::seal() noexcept {
  pub = brg_result{};
  pub.size = sizeof(brg_result);
  pub.flags = out.kind == Outcome::partial ? BRG_RES_PARTIAL : out.kind == Outcome::cached ? BRG_RES_CACHED : 0;
  pub.id = out.id;
  pub.user_data = out.user_data;
  pub.status = out.status;
  pub.http_status = out.http_status;
  pub.attempts = out.attempts;
  pub.body = out.body.c_str();
  pub.body_len = out.body.size();
  pub.error = out.error.c_str();
  pub.queued_us = out.queued_us;
  pub.ttfb_us = out.ttfb_us;
  pub.total_us = out.total_us;
  pub.prompt_tokens = out.prompt_tokens;
  pub.completion_tokens = out.completion_tokens;
  pub.sent_us = out.sent_us;
  pub.request_id = out.request_id.c_str();
  pub.ttft_us = out.ttft_us;
  pub.events = out.events;
  pub.gap_max_us = out.gap_max_us;
  pub.gap_mean_us = out.gap_mean_us;
  pub.retry_after_ms = out.retry_after_ms;
  pub.headers = out.headers.c_str();
  pub.headers_len = out.headers.size();
}

void copy_stats(const EngineStats& e, struct brg_stats* out) noexcept {
  struct brg_stats s{};
  s.size = out->size;
  s.backend = e.backend;
  s.submitted = e.submitted;
  s.completed = e.completed;
  s.failed = e.failed;
  s.cancelled = e.cancelled;
  s.retried = e.retried;
  s.timed_out = e.timed_out;
  s.queued = e.queued;
  s.in_flight = e.in_flight;
  s.connections_open = e.connections_open;
  s.connections_idle = e.connections_idle;
  s.connections_opened = e.connections_opened;
  s.tls_resumed = e.tls_resumed;
  s.bytes_sent = e.bytes_sent;
  s.bytes_received = e.bytes_received;
  s.results_waiting = e.results_waiting;
  s.waiting_rate = e.waiting_rate;
  s.throttled = e.throttled;
  s.cooling_keys = e.cooling_keys;
  s.breaker_open_keys = e.breaker_open_keys;
  s.rejected = e.rejected;
  s.prompt_tokens = e.prompt_tokens;
  s.completion_tokens = e.completion_tokens;
  s.cache_hits = e.cache_hits;
  s.shared_round_trips = e.shared_round_trips;
  s.shared_fallback_keys = e.shared_fallback_keys;
  std::memcpy(out, &s, std::min<size_t>(out->size, sizeof s));
}

}  // namespace barrage::capi
