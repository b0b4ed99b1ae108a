// Checking Batch API input lines (see input_scan.hpp): the batch library's
// line reader and parser, so a dry run applies the rules the run applies.
#include "input_scan.hpp"

#include <fmt/format.h>

#include <cstring>

#include "batch/batch_options.hpp"
#include "batch/input_line.hpp"
#include "batch/line_reader.hpp"

namespace barrage::cli {

bool scan_input(const std::string& path, const std::string& endpoint, InputScan* s, std::string* err) {
  std::string why;
  std::string base = normalize_endpoint(endpoint, &why);
  if (base.empty()) {
    *err = why;
    return false;
  }
  LineReader reader;
  *err = reader.open(path);
  if (!err->empty()) return false;
  InputLineParser parser(base);
  Line line;
  InputLine in;
  int rc;
  while ((rc = reader.next(&line)) > 0) {
    parser.parse(line.text, line.number, &in);
    if (in.kind == InputLine::Kind::blank) continue;
    s->lines++;
    if (in.kind == InputLine::Kind::invalid) {
      s->invalid.push_back(in.error);
      continue;
    }
    s->valid++;
    s->by_url[in.url]++;
    s->by_model[in.model.empty() ? "(none)" : in.model]++;
  }
  if (rc < 0) {
    *err = fmt::format("cannot read {}: {}", path, std::strerror(-rc));
    return false;
  }
  return true;
}

}  // namespace barrage::cli
