// What the engine reports for a request: one final outcome, and before it,
// for a stream, one partial outcome per event. Plain engine types; capi/
// turns each into a brg_result. Outcomes are made by an OutcomeStore so the
// C ABI can allocate its result struct and the outcome in one block.
#pragma once

#include <cstdint>
#include <new>
#include <string>

#include "loop/mpsc_queue.hpp"

namespace barrage {

struct Outcome : MpscNode {
  enum Kind : uint8_t { final_answer, partial, cached };

  uint64_t id = 0;
  uint64_t user_data = 0;
  Kind kind = final_answer;
  int status = 0;       // brg_status
  int http_status = 0;  // the answer's status; 0 when none arrived
  uint32_t attempts = 0;
  uint32_t events = 0;  // stream: data events delivered (partial: this event's index)
  int64_t queued_us = -1, sent_us = -1, ttfb_us = -1, total_us = 0;
  int64_t ttft_us = -1, gap_max_us = -1, gap_mean_us = -1;
  int64_t prompt_tokens = -1, completion_tokens = -1;
  std::string body;
  std::string error;
  std::string request_id;
  std::string headers;          // "name: value\n" per field, when the request asked for them
  int64_t retry_after_ms = -1;  // the answer's own wait hint, unclamped; -1 none
};

class OutcomeStore {
 public:
  virtual ~OutcomeStore() = default;
  virtual Outcome* make() noexcept = 0;          // nullptr when out of memory
  virtual void destroy(Outcome* o) noexcept = 0;  // one that was never handed out
};

// Plain new/delete, for engines without a C ABI around them (tests).
class HeapOutcomeStore final : public OutcomeStore {
 public:
  Outcome* make() noexcept override { return new (std::nothrow) Outcome; }
  void destroy(Outcome* o) noexcept override { delete o; }
};

}  // namespace barrage
