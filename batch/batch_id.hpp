// The "id" of each output line: "batch_req_" and 24 random hex digits, as
// the Batch API writes them. Random per line, seeded from the kernel, so two
// runs appending to one file never mint the same id.
#pragma once

#include <cstdint>
#include <string>

namespace barrage {

class BatchIdSource {
 public:
  BatchIdSource();  // seeded from getrandom(2)
  explicit BatchIdSource(uint64_t seed) : state_(seed) {}
  std::string next();

 private:
  uint64_t next_random() noexcept;

  uint64_t state_;  // splitmix64
};

}  // namespace barrage
