// What to do after an attempt failed: one pure function of the failure and
// the request's facts, so that every retry rule is in one place and a table
// test can cover every combination. Time is passed in.
#pragma once

#include <cstdint>

#include "flow/retry_policy.hpp"

namespace barrage {

// A request whose stream the server never processed (HTTP/2 REFUSED_STREAM,
// above a GOAWAY's last stream id) is re-sent for free up to this many
// times, and before its deadline; past it, the failure is charged as a retry.
inline constexpr uint32_t kMaxFreeResends = 32;

enum class FailurePhase {
  connect,   // no connection could be had
  send,      // written, no response byte yet
  response,  // part of the response, or a whole error answer, arrived
};

struct FailureFacts {
  int status = 0;       // brg_status of the attempt (BRG_E_HTTP for an error answer)
  int http_status = 0;  // the answer's status; 0 when no whole answer arrived
  FailurePhase phase = FailurePhase::connect;
  bool reused = false;       // the connection had carried an exchange before
  bool unprocessed = false;  // the server certainly did not act on it
  int64_t retry_after_ms = -1;  // the server's Retry-After; -1 none
  bool local = false;  // our side failed (EMFILE, ENOMEM): no evidence against the server
};

struct RequestFacts {
  uint32_t retries = 0;      // charged retries so far
  uint32_t max_retries = 0;
  uint32_t free_resends = 0;  // re-sends of unprocessed streams so far
  bool stale_retry_used = false;  // the one free retry after a stale keep-alive connection
  bool events_delivered = false;  // partial results went out: a retry would repeat them
  uint64_t deadline_at_ms = 0;    // 0 = none
};

enum class RetryAction {
  resend_now,        // free: the server never processed it; no retry charged
  fresh_connection,  // free: a stale keep-alive connection; must not reuse an idle one
  back_off,          // charge a retry; next attempt at `at_ms`
  finish,            // report the failure
};

struct RetryDecision {
  RetryAction action = RetryAction::finish;
  uint64_t at_ms = 0;      // back_off: when the next attempt may start (wheel ms)
  bool retryable = false;  // the failure is of a kind another attempt may cure (feeds the breaker)
};

// random: a uniform 64-bit value for the backoff jitter.
RetryDecision decide_retry(const FailureFacts& f, const RequestFacts& r, const StatusSet& statuses,
                           const RetryPolicy& policy, uint64_t now_ms, uint64_t random) noexcept;

}  // namespace barrage
