// Reading an existing output file back for BRG_BATCH_RESUME: which inputs
// already have a line, and where the last complete line ends.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_set>

namespace barrage {

struct ResumeState {
  std::unordered_set<std::string> custom_ids;  // every custom_id with a line
  std::unordered_set<uint64_t> invalid_lines;  // barrage.line of lines with custom_id null
  uint64_t lines = 0;       // complete lines read
  uint64_t unreadable = 0;  // complete lines, not the last, that are no output line (left alone)
  uint64_t keep_bytes = 0;  // the end of the last complete, valid line
  bool torn = false;        // the file goes on past keep_bytes
};

// Reads path (a missing file is an empty state). The last line is torn when
// it lacks its "\n" or is not valid JSON; with `truncate` the file is cut
// back to keep_bytes. Returns "" or why the file cannot be used.
std::string scan_output(const std::string& path, bool truncate, ResumeState* out);

}  // namespace barrage
