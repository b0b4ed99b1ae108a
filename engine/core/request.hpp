// One submitted request as the engine carries it: what was asked (the head
// built once at submit), its timers, and where in its life it stands. The
// lists it can be on are the pool's and the limit key's (through the waiter
// bases) and the lifecycle's queues (through `hook`).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/stream_state.hpp"
#include "flow/limit_keys.hpp"
#include "http/request_head.hpp"
#include "http/url.hpp"
#include "loop/intrusive_list.hpp"
#include "loop/mpsc_queue.hpp"
#include "loop/timer_wheel.hpp"
#include "pool/channel.hpp"
#include "pool/origin_pool.hpp"

namespace barrage {

class Lifecycle;
struct Group;

struct Request : MpscNode, PoolWaiter, KeyWaiter {
  // Where the request stands. The lifecycle's step() moves a request out of
  // the `to_*` states; events and timers move it into them.
  enum class State {
    submitted,    // in the submission mailbox
    queued,       // waiting for an in-flight slot (FIFO)
    to_admit,     // on the ready queue, holding a slot: next, its limit key's gate
    rate_wait,    // waiting for its limit key (the key's FIFO and timer), no slot
    to_dispatch,  // on the ready queue: next, a channel of its origin
    stepping,     // taken off the ready queue, inside step()
    waiting,      // waiting for a channel (the origin's FIFO)
    active,       // an exchange on a channel
    backoff,      // between attempts, on its attempt timer
    done,         // finished; freed at once
  };

  Lifecycle* lifecycle = nullptr;
  uint64_t id = 0;
  uint64_t user_data = 0;
  http::Url url;
  http::RequestHead head;
  std::string limit_key;  // "" = the origin
  uint64_t group_id = 0;
  std::string cache_key;                // "" = not cached
  std::unique_ptr<StreamState> stream;  // streamed requests only

  int64_t timeout_ms = 0;           // per attempt; 0 = none
  int64_t deadline_ms = 0;          // relative, for messages; 0 = none
  uint64_t own_deadline_at_ms = 0;  // absolute wheel time of the request's own deadline; 0 = none
  uint64_t deadline_at_ms = 0;      // effective: the earlier of its own and its group's; 0 = none
  bool group_deadline = false;      // the effective deadline is the group's
  uint32_t max_retries = 0;

  uint64_t submit_ns = 0;
  uint64_t granted_ns = 0;
  uint64_t rate_wait_ns = 0;   // when it began waiting for its key
  uint64_t first_byte_ns = 0;  // of the current attempt
  uint64_t sent_ns = 0;        // the current attempt went to its channel
  uint32_t attempts = 0;       // attempts the limit key granted (free re-sends are not counted)
  uint32_t retries = 0;        // charged retries
  uint32_t free_resends = 0;   // re-sends of streams the server never processed
  bool holds_slot = false;
  bool stale_retry_used = false;
  bool fresh_connection = false;  // the next dispatch must not reuse a connection

  State state = State::submitted;
  OriginPool* origin = nullptr;
  LimitKey* key = nullptr;
  Group* group = nullptr;
  Channel* channel = nullptr;  // while active
  int64_t exchange = 0;        // the channel's handle for it
  Timer attempt_timer;         // attempt timeout, or the backoff wait
  Timer deadline_timer;
  ListHook<Request> hook;        // the lifecycle's slot queue or ready queue
  ListHook<Request> group_hook;  // members of its group

  // The latest failed attempt, reported if no later attempt succeeds.
  int last_status = 0;
  int last_http = 0;
  std::string last_error;
  std::string last_body;
  std::string request_id;  // x-request-id of the latest answer
  bool keep_headers = false;
  std::string headers;          // the latest answer's fields, when kept (answer_head.hpp)
  int64_t retry_after_ms = -1;  // the latest answer's Retry-After as sent; -1 none
};

}  // namespace barrage
