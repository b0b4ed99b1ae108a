// The first pass over a batch input: every line checked before anything is
// sent, duplicate custom_ids refused, and the lines this invocation will
// run counted (after resume and shard skips) for the progress figures.
#pragma once

#include <cstdint>
#include <string>

#include "batch/batch_options.hpp"
#include "batch/input_line.hpp"
#include "batch/line_reader.hpp"
#include "batch/resume_scan.hpp"

namespace barrage {

enum class LineAction {
  ignore,   // blank
  skip,     // another shard's, or already in the output
  invalid,  // gets an "invalid_request" error line
  run,      // gets sent
};

// Both passes decide each line the same way through this.
class LineSelector {
 public:
  LineSelector(const BatchSettings& settings, const ResumeState& resume);
  // Cheap test first: lines of other shards need no parse in the second pass.
  bool in_shard(const Line& line) const noexcept {
    return shard_count_ <= 1 || (line.number - 1) % shard_count_ == shard_index_;
  }
  // `in` must be the parse of `line`.
  LineAction decide(const Line& line, const InputLine& in) const;

 private:
  const ResumeState& resume_;
  bool resume_on_;
  uint32_t shard_index_, shard_count_;
};

struct BatchPlan {
  uint64_t total = 0;    // lines to run or report as invalid in this invocation
  uint64_t invalid = 0;  // of which invalid
  uint64_t skipped = 0;  // other shards' lines and lines already in the output
};

// Reads the whole input once. Returns 0, or BRG_E_INVALID with *err for an
// unreadable input or a duplicate custom_id (both line numbers named).
int plan_batch(const BatchSettings& settings, const LineSelector& selector, InputLineParser& parser,
               BatchPlan* out, std::string* err);

}  // namespace barrage
