// A snapshot of the engine's counters, in the engine's own type; capi/
// copies it into a brg_stats of whatever size the caller has.
#pragma once

#include <cstdint>

namespace barrage {

struct EngineStats {
  int32_t backend = 0;  // BackendKind
  uint64_t submitted = 0, completed = 0, failed = 0, cancelled = 0, retried = 0, timed_out = 0;
  uint64_t queued = 0, in_flight = 0;
  uint64_t connections_open = 0, connections_idle = 0, connections_opened = 0, tls_resumed = 0;
  uint64_t bytes_sent = 0, bytes_received = 0;
  uint64_t results_waiting = 0;
  uint64_t waiting_rate = 0, throttled = 0, cooling_keys = 0, breaker_open_keys = 0, rejected = 0;
  uint64_t prompt_tokens = 0, completion_tokens = 0;
  uint64_t cache_hits = 0;
  uint64_t shared_round_trips = 0, shared_fallback_keys = 0;
};

}  // namespace barrage
