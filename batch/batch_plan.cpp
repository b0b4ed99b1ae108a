// The validation pass. Duplicates are checked across the whole file, other
// shards included: shards of one input append to their own outputs, and a
// resume keyed by custom_id is only sound if the ids are unique.
#include "batch/batch_plan.hpp"

#include <cstring>
#include <unordered_map>

#include "barrage.h"

namespace barrage {

LineSelector::LineSelector(const BatchSettings& settings, const ResumeState& resume)
    : resume_(resume),
      resume_on_(settings.flags & BRG_BATCH_RESUME),
      shard_index_(settings.shard_index),
      shard_count_(settings.shard_count) {}

LineAction LineSelector::decide(const Line& line, const InputLine& in) const {
  if (in.kind == InputLine::Kind::blank) return LineAction::ignore;
  if (!in_shard(line)) return LineAction::skip;
  if (resume_on_) {
    if (in.has_custom_id ? resume_.custom_ids.contains(in.custom_id) : resume_.invalid_lines.contains(line.number))
      return LineAction::skip;
  }
  return in.kind == InputLine::Kind::valid ? LineAction::run : LineAction::invalid;
}

int plan_batch(const BatchSettings& settings, const LineSelector& selector, InputLineParser& parser,
               BatchPlan* out, std::string* err) {
  LineReader reader;
  *err = reader.open(settings.input_path);
  if (!err->empty()) return BRG_E_INVALID;
  std::unordered_map<std::string, uint64_t> first_line;  // custom_id -> line number
  Line line;
  InputLine in;
  int rc;
  while ((rc = reader.next(&line)) > 0) {
    parser.parse(line.text, line.number, &in);
    if (in.has_custom_id) {
      auto [it, fresh] = first_line.emplace(in.custom_id, line.number);
      if (!fresh) {
        *err = "duplicate custom_id \"" + in.custom_id + "\" on lines " + std::to_string(it->second) + " and " +
               std::to_string(line.number) + " of " + settings.input_path;
        return BRG_E_INVALID;
      }
    }
    switch (selector.decide(line, in)) {
      case LineAction::ignore: break;
      case LineAction::skip: ++out->skipped; break;
      case LineAction::invalid: ++out->invalid; [[fallthrough]];
      case LineAction::run: ++out->total; break;
    }
  }
  if (rc < 0) {
    *err = "cannot read " + settings.input_path + ": " + std::strerror(-rc);
    return BRG_E_INVALID;
  }
  return 0;
}

}  // namespace barrage
