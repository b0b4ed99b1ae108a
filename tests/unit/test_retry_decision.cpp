// decide_retry: one row per rule and per combination that matters (status,
// phase, reuse, refusal, retries left, deadline, events delivered), then
// sweeps over every combination checking the rules that must always hold.
#include <gtest/gtest.h>

#include <vector>

#include "barrage.h"
#include "flow/retry_decision.hpp"

namespace barrage {
namespace {

constexpr uint64_t kNow = 10'000;

struct Row {
  const char* what;
  int status, http;
  FailurePhase phase;
  bool reused, unprocessed;
  uint32_t retries, max_retries, resends;
  bool stale_used, events;
  uint64_t deadline;
  int64_t retry_after;
  RetryAction expect;
};

using P = FailurePhase;
using A = RetryAction;

const std::vector<Row> kRows = {
    // HTTP answers: the status set decides; 4xx other than 408/409/429 finish at once.
    {"500 with retries left", BRG_E_HTTP, 500, P::response, false, false, 0, 2, 0, false, false, 0, -1, A::back_off},
    {"502", BRG_E_HTTP, 502, P::response, true, false, 1, 2, 0, false, false, 0, -1, A::back_off},
    {"503", BRG_E_HTTP, 503, P::response, false, false, 0, 2, 0, false, false, 0, -1, A::back_off},
    {"504", BRG_E_HTTP, 504, P::response, false, false, 0, 2, 0, false, false, 0, -1, A::back_off},
    {"429", BRG_E_HTTP, 429, P::response, false, false, 0, 2, 0, false, false, 0, -1, A::back_off},
    {"408", BRG_E_HTTP, 408, P::response, false, false, 0, 2, 0, false, false, 0, -1, A::back_off},
    {"409", BRG_E_HTTP, 409, P::response, false, false, 0, 2, 0, false, false, 0, -1, A::back_off},
    {"400 never", BRG_E_HTTP, 400, P::response, false, false, 0, 2, 0, false, false, 0, -1, A::finish},
    {"401 never", BRG_E_HTTP, 401, P::response, false, false, 0, 2, 0, false, false, 0, -1, A::finish},
    {"404 never", BRG_E_HTTP, 404, P::response, false, false, 0, 2, 0, false, false, 0, -1, A::finish},
    {"500, retries used up", BRG_E_HTTP, 500, P::response, false, false, 2, 2, 0, false, false, 0, -1, A::finish},
    {"500, no retries asked", BRG_E_HTTP, 500, P::response, false, false, 0, 0, 0, false, false, 0, -1, A::finish},
    {"429 whose Retry-After passes the deadline", BRG_E_HTTP, 429, P::response, false, false, 0, 2, 0, false, false,
     kNow + 1000, 5000, A::finish},
    {"429 whose Retry-After is before the deadline", BRG_E_HTTP, 429, P::response, false, false, 0, 2, 0, false,
     false, kNow + 10000, 5000, A::back_off},
    // Transport failures.
    {"connect refused", BRG_E_CONNECT, 0, P::connect, false, false, 0, 2, 0, false, false, 0, -1, A::back_off},
    {"connect timeout", BRG_E_TIMEOUT, 0, P::connect, false, false, 0, 2, 0, false, false, 0, -1, A::back_off},
    {"DNS failure never (the resolver retried)", BRG_E_DNS, 0, P::connect, false, false, 0, 2, 0, false, false, 0, -1, A::finish},
    {"TLS (certificate) never", BRG_E_TLS, 0, P::connect, false, false, 0, 2, 0, false, false, 0, -1, A::finish},
    {"reset mid-answer", BRG_E_IO, 0, P::response, true, false, 0, 2, 0, false, false, 0, -1, A::back_off},
    {"answer too large never", BRG_E_TOO_LARGE, 0, P::response, false, false, 0, 2, 0, false, false, 0, -1,
     A::finish},
    {"protocol error never", BRG_E_PROTOCOL, 0, P::response, false, false, 0, 2, 0, false, false, 0, -1, A::finish},
    {"attempt timeout", BRG_E_TIMEOUT, 0, P::response, false, false, 0, 2, 0, false, false, 0, -1, A::back_off},
    // Stale keep-alive connection: one free retry on a fresh connection.
    {"stale keep-alive", BRG_E_IO, 0, P::send, true, false, 0, 0, 0, false, false, 0, -1, A::fresh_connection},
    {"stale keep-alive, free retry used", BRG_E_IO, 0, P::send, true, false, 0, 2, 0, true, false, 0, -1,
     A::back_off},
    {"stale keep-alive, free used, no retries", BRG_E_IO, 0, P::send, true, false, 0, 0, 0, true, false, 0, -1,
     A::finish},
    {"fresh connection closed before answer", BRG_E_IO, 0, P::send, false, false, 0, 2, 0, false, false, 0, -1,
     A::back_off},
    {"reused, but the answer had begun", BRG_E_IO, 0, P::response, true, false, 0, 0, 0, false, false, 0, -1,
     A::finish},
    // Never processed (REFUSED_STREAM, above GOAWAY): free re-send, even with no retries.
    {"refused stream", BRG_E_IO, 0, P::send, true, true, 0, 0, 0, false, false, 0, -1, A::resend_now},
    {"refused stream, many re-sends", BRG_E_IO, 0, P::send, true, true, 0, 0, kMaxFreeResends - 1, false,
     false, 0, -1, A::resend_now},
    {"refused past the ceiling is charged", BRG_E_IO, 0, P::send, false, true, 0, 2, kMaxFreeResends, false,
     false, 0, -1, A::back_off},
    {"refused past the ceiling, no retries", BRG_E_IO, 0, P::send, false, true, 0, 0, kMaxFreeResends, false,
     false, 0, -1, A::finish},
    {"refused after the deadline", BRG_E_IO, 0, P::send, true, true, 0, 0, 0, false, false, kNow, -1,
     A::finish},
    // Events already delivered: never again.
    {"stream cut after events", BRG_E_IO, 0, P::response, false, false, 0, 2, 0, false, true, 0, -1, A::finish},
    {"refused after events (cannot happen, still safe)", BRG_E_IO, 0, P::send, true, true, 0, 2, 0, false,
     true, 0, -1, A::finish},
};

RetryDecision run(const Row& r, uint64_t random = 0) {
  FailureFacts f;
  f.status = r.status;
  f.http_status = r.http;
  f.phase = r.phase;
  f.reused = r.reused;
  f.unprocessed = r.unprocessed;
  f.retry_after_ms = r.retry_after;
  RequestFacts q;
  q.retries = r.retries;
  q.max_retries = r.max_retries;
  q.free_resends = r.resends;
  q.stale_retry_used = r.stale_used;
  q.events_delivered = r.events;
  q.deadline_at_ms = r.deadline;
  return decide_retry(f, q, StatusSet(), RetryPolicy{500, 30000}, kNow, random);
}

TEST(RetryDecision, EachRowGetsItsAction) {
  for (const Row& r : kRows) {
    RetryDecision d = run(r);
    EXPECT_EQ(int(d.action), int(r.expect)) << r.what;
  }
}

TEST(RetryDecision, BackoffIsJitteredWithinItsCapAndNeverBeforeRetryAfter) {
  Row r = kRows[0];  // 500, first retry: uniform in [0, 500] ms
  for (uint64_t random : {uint64_t(0), uint64_t(1) << 63, ~uint64_t(0)}) {
    RetryDecision d = run(r, random);
    ASSERT_EQ(d.action, A::back_off);
    EXPECT_GE(d.at_ms, kNow);
    EXPECT_LE(d.at_ms, kNow + 500);
  }
  r.retry_after = 7000;
  RetryDecision d = run(r, 0);
  EXPECT_EQ(d.at_ms, kNow + 7000);
}

TEST(RetryDecision, RetryableFeedsTheBreakerOnlyForCurableFailures) {
  EXPECT_TRUE(run(kRows[0]).retryable);   // 500
  EXPECT_FALSE(run(kRows[7]).retryable);  // 400
  EXPECT_FALSE(run(kRows[17]).retryable);  // TLS
  Row events = kRows[0];
  events.events = true;
  EXPECT_FALSE(run(events).retryable);
}

// Every combination: the invariants the rows above are instances of.
TEST(RetryDecision, InvariantsHoldForEveryCombination) {
  const int statuses[] = {BRG_E_HTTP, BRG_E_CONNECT, BRG_E_IO, BRG_E_TLS, BRG_E_TIMEOUT,
                          BRG_E_PROTOCOL, BRG_E_TOO_LARGE, BRG_E_DNS};
  const int https[] = {0, 400, 404, 408, 429, 500, 503};
  const P phases[] = {P::connect, P::send, P::response};
  StatusSet set;
  int checked = 0;
  for (int st : statuses)
    for (int http : https) {
      if ((st == BRG_E_HTTP) != (http != 0)) continue;
      for (P ph : phases)
        for (int bits = 0; bits < 64; ++bits) {
          Row r{"combo", st, http, ph, bool(bits & 1), bool(bits & 2), 0, uint32_t(bits & 4 ? 2 : 0),
                uint32_t(bits & 8 ? kMaxFreeResends : 0), bool(bits & 16), bool(bits & 32), 0, -1, A::finish};
          RetryDecision d = run(r);
          ++checked;
          bool retryable = http ? set.contains(http) : is_retryable_error(st);
          if (r.events) {
            EXPECT_EQ(d.action, A::finish) << "events delivered: never again";
          }
          if (!r.events && r.unprocessed && r.resends < kMaxFreeResends) {
            EXPECT_EQ(d.action, A::resend_now);
          }
          if (d.action == A::back_off) {
            EXPECT_TRUE(retryable);
            EXPECT_LT(r.retries, r.max_retries);
          }
          if (d.action == A::fresh_connection) {
            EXPECT_TRUE(r.reused && ph == P::send && st == BRG_E_IO && !r.stale_used);
          }
          if (!retryable && !r.unprocessed && d.action != A::fresh_connection) {
            EXPECT_EQ(d.action, A::finish);
          }
        }
    }
  EXPECT_GT(checked, 1000);
}

}  // namespace
}  // namespace barrage
