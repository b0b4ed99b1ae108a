// A read-only pass over a Batch API input file for `barrage run --dry-run`:
// which lines are unusable and why, and what the usable ones ask for. The
// batch runner does its own validation when it runs; brg_batch_run's dry run
// returns counts only, so the line numbers shown come from here.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace barrage::cli {

struct InputScan {
  uint64_t lines = 0;  // non-blank lines
  uint64_t valid = 0;
  std::vector<std::pair<uint64_t, std::string>> invalid;  // (line number, reason)
  std::map<std::string, uint64_t> by_url, by_model;
  uint64_t body_bytes = 0;
};

// Returns false with *err when the file cannot be read.
bool scan_input(const std::string& path, InputScan* out, std::string* err);

}  // namespace barrage::cli
