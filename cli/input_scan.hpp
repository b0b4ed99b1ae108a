// A read-only pass over a Batch API input file for `barrage run --dry-run`:
// which lines are unusable and why, and what the usable ones ask for.
// brg_batch_run's dry run returns counts only, so the line numbers shown come
// from here; the lines are read and checked by the batch library's own
// LineReader and InputLineParser, so both name the same lines.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace barrage::cli {

struct InputScan {
  uint64_t lines = 0;  // non-blank lines
  uint64_t valid = 0;
  std::vector<std::string> invalid;          // "line N: why", in file order
  std::map<std::string, uint64_t> by_url;    // absolute URL as it would be sent
  std::map<std::string, uint64_t> by_model;  // "(none)" when body.model is absent
};

// endpoint: the base for relative urls, as given to brg_batch_run. Returns
// false with *err when the file cannot be read or the endpoint is unusable.
bool scan_input(const std::string& path, const std::string& endpoint, InputScan* out, std::string* err);

}  // namespace barrage::cli
