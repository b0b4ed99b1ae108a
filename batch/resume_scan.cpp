// Resume scan: streams the output file (it can be gigabytes of answers) and
// keeps only ids. A torn line anywhere but last cannot come from a crash of
// ours, only from appending without resume; such lines are counted and
// skipped, and whatever they held simply runs again.
#include "batch/resume_scan.hpp"

#include <simdjson.h>

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "batch/line_reader.hpp"
#include "batch/output_file.hpp"

namespace barrage {
namespace {

// Records what the line says; false when it is not valid JSON.
bool record(simdjson::dom::parser& parser, std::string_view text, ResumeState* out) {
  simdjson::dom::element doc;
  if (parser.parse(text.data(), text.size(), false).get(doc)) return false;
  simdjson::dom::object root;
  if (doc.get_object().get(root)) return true;
  simdjson::dom::element id;
  if (root["custom_id"].get(id)) return true;
  std::string_view s;
  if (!id.get_string().get(s)) {
    out->custom_ids.emplace(s);
    return true;
  }
  simdjson::dom::element error;
  uint64_t line = 0;
  if (id.is_null() && !root["error"].get(error) && !error.is_null() && !root["barrage"]["line"].get_uint64().get(line))
    out->invalid_lines.insert(line);
  return true;
}

}  // namespace

std::string scan_output(const std::string& path, bool truncate, ResumeState* out) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) return "";
  LineReader reader;
  std::string err = reader.open(path);
  if (!err.empty()) return err;
  simdjson::dom::parser parser;
  Line line;
  bool last_valid = true;  // the most recent complete line
  uint64_t last_start = 0;
  int rc;
  while ((rc = reader.next(&line)) > 0) {
    if (!last_valid) ++out->unreadable;  // it turned out not to be the last line
    if (!line.terminated) {
      last_valid = true;  // counted above if it was not; this one is the torn one
      out->torn = true;
      out->keep_bytes = line.offset;
      break;
    }
    ++out->lines;
    last_start = line.offset;
    last_valid = line.text.empty() || record(parser, line.text, out);
  }
  if (rc < 0) return "cannot read " + path + ": " + std::strerror(-rc);
  if (!last_valid) {
    --out->lines;
    out->torn = true;
    out->keep_bytes = last_start;
  } else if (!out->torn) {
    out->keep_bytes = uint64_t(st.st_size);
  }
  if (out->torn && truncate) {
    int t = truncate_file(path, out->keep_bytes);
    if (t != 0) return "cannot truncate the torn last line of " + path + ": " + std::strerror(-t);
  }
  return "";
}

}  // namespace barrage
