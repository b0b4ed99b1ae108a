// One submitted request as the engine carries it: the copied and
// serialized request, its timers, and where in its life it stands.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/stream_state.hpp"
#include "http/url.hpp"
#include "loop/intrusive_list.hpp"
#include "loop/mpsc_queue.hpp"
#include "loop/timer_wheel.hpp"

namespace barrage {

class Connection;
class Engine;
struct Group;
struct LimitKey;
struct Origin;

struct Request : MpscNode {
  enum class State {
    submitted,  // in the submission queue
    queued,     // waiting for an in-flight slot
    rate_wait,  // has a slot, waiting for its limit key's buckets or cooldown
    waiting,    // has a slot and rate, waiting for a connection of its origin
    active,     // bound to a connection (connecting or exchanging)
    backoff,    // between attempts, on its attempt timer
    detached,   // between steps: in no list, bound to no connection
  };

  Engine* engine = nullptr;
  uint64_t id = 0;
  uint64_t user_data = 0;
  uint32_t flags = 0;
  bool head = false;
  http::Url url;
  std::string wire;  // the serialized HTTP request, sent as is on every attempt
  std::string limit_key;  // "" = the origin
  uint64_t group_id = 0;
  int64_t tokens = 0;     // LLM tokens charged to the key's bucket per attempt
  std::string cache_key;  // "" = not cached
  std::unique_ptr<StreamState> stream;  // BRG_REQ_STREAM only

  int64_t timeout_ms = 0;      // per attempt
  int64_t deadline_ms = 0;     // relative, for messages; 0 = none
  uint64_t own_deadline_at_ms = 0;  // absolute wheel time of the request's own deadline; 0 = none
  uint64_t deadline_at_ms = 0; // effective: the earlier of its own and its group's; 0 = none
  bool group_deadline = false; // the effective deadline is the group's
  int32_t max_retries = 0;

  uint64_t submit_ns = 0;
  uint64_t granted_ns = 0;
  uint64_t first_byte_ns = 0;  // of the current attempt
  uint64_t sent_ns = 0;        // the current attempt's request went to its connection
  uint32_t attempts = 0;
  uint32_t retries = 0;
  bool holds_slot = false;
  bool stale_retry_used = false;
  bool force_fresh = false;  // next attempt must not reuse an idle connection
  bool probe = false;        // this attempt is its key's half-open breaker probe

  State state = State::submitted;
  Origin* origin = nullptr;
  LimitKey* key = nullptr;
  Group* group = nullptr;
  Connection* conn = nullptr;
  int32_t h2_stream = 0;     // the stream id on conn when it is an HTTP/2 connection
  uint32_t unprocessed = 0;  // free re-dispatches after HTTP/2 refusals (REFUSED_STREAM, GOAWAY)
  Timer attempt_timer;  // attempt timeout, or the backoff wait
  Timer deadline_timer;
  ListHook<Request> hook;        // engine queue, key's rate queue or origin waiting list
  ListHook<Request> group_hook;  // members of its group

  // The latest failed attempt, reported if no later attempt succeeds.
  int last_status = 0;
  int last_http = 0;
  std::string last_error;
  std::string last_body;
  std::string request_id;  // x-request-id of the latest answer
};

}  // namespace barrage
