// The "id" of each output line: "batch_req_" and 24 random hex digits, as
// the Batch API writes them. Random per line, seeded from the kernel, so two
// runs appending to one file never mint the same id.
#pragma once

#include <string>

#include "flow/retry_policy.hpp"

namespace barrage {

class BatchIdSource {
 public:
  BatchIdSource();  // seeded from getrandom(2)
  explicit BatchIdSource(uint64_t seed) : random_(seed) {}
  std::string next();

 private:
  Random random_;
};

}  // namespace barrage
