// Outcomes of requests: the fields every outcome of a request shares
// (identity, attempts, timings, a stream's token timing so far), made once
// here for final, partial and cached outcomes alike, and handed to the
// mailbox.
#pragma once

#include <cstdint>
#include <string>

#include "core/mailbox.hpp"
#include "core/outcome.hpp"

namespace barrage {

struct Request;

class Results {
 public:
  Results(Mailbox& mailbox, OutcomeStore& store) noexcept : mailbox_(mailbox), store_(store) {}

  // An outcome stamped with r's shared fields as of now_ns; nullptr when out
  // of memory (a partial is then skipped: the final outcome has the whole stream).
  Outcome* stamped(const Request& r, uint64_t now_ns) noexcept;
  // Queues it for the caller (reactor thread).
  void push(Outcome* o) noexcept { mailbox_.push(o); }
  void discard(Outcome* o) noexcept { store_.destroy(o); }

 private:
  Mailbox& mailbox_;
  OutcomeStore& store_;
};

}  // namespace barrage
