// Batch API input and resume: (1) an input line is blank, valid or invalid
// with a "line N: " reason; a valid line's body is the exact text of the
// line's "body" object (the same object the DOM reads, duplicate keys
// included), its model is body.model, its url absolute; parsing is the same
// after other lines. (2) Resume scan of any output file keeps a prefix that
// ends at a line end, marks it torn exactly when it keeps less than the
// file, and truncating to it loses no recorded id.
#include <sys/mman.h>
#include <unistd.h>

#include <simdjson.h>

#include <string>

#include "batch/input_line.hpp"
#include "batch/line_reader.hpp"
#include "batch/resume_scan.hpp"
#include "fuzz_util.hpp"

using barrage::InputLine;
using barrage::InputLineParser;

namespace {

struct Parsed {
  InputLine::Kind kind;
  bool has_id;
  std::string id, url, body, model, error;
  bool operator==(const Parsed&) const = default;
};

Parsed parse(InputLineParser& p, std::string_view line, uint64_t n) {
  std::string padded(line);
  padded.append(barrage::kLinePadding, '\0');
  const std::string_view text(padded.data(), line.size());
  InputLine out;
  p.parse(text, n, &out);
  if (out.kind == InputLine::Kind::valid) {
    FUZZ_CHECK(out.body.data() >= text.data() && out.body.data() + out.body.size() <= text.data() + text.size());
    FUZZ_CHECK(out.body.front() == '{' && out.body.back() == '}');
    FUZZ_CHECK(out.has_custom_id && !out.custom_id.empty() && out.error.empty());
    FUZZ_CHECK(out.url.rfind("https://", 0) == 0 || out.url.rfind("http://", 0) == 0);
    static simdjson::dom::parser a, b;
    simdjson::dom::element whole, body;
    FUZZ_CHECK(!a.parse(text.data(), text.size()).get(whole));
    FUZZ_CHECK(!b.parse(out.body.data(), out.body.size()).get(body));
    simdjson::dom::element dom_body;
    FUZZ_CHECK(!whole["body"].get(dom_body));
    FUZZ_CHECK(simdjson::minify(dom_body) == simdjson::minify(body));
    std::string_view model;
    if (!body["model"].get_string().get(model)) {
      FUZZ_CHECK(out.model == model);
    } else {
      FUZZ_CHECK(out.model.empty());
    }
  } else if (out.kind == InputLine::Kind::invalid) {
    FUZZ_CHECK(out.error.rfind("line " + std::to_string(n) + ": ", 0) == 0);
  } else {
    FUZZ_CHECK(line.find_first_not_of(" \t\r") == std::string_view::npos);
  }
  return {out.kind, out.has_custom_id, out.custom_id, out.url, std::string(out.body), out.model, out.error};
}

void check_resume(std::string_view file) {
  static const int fd = memfd_create("output", 0);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  FUZZ_CHECK(fd >= 0 && ftruncate(fd, 0) == 0);
  FUZZ_CHECK(pwrite(fd, file.data(), file.size(), 0) == ssize_t(file.size()));
  barrage::ResumeState first;
  FUZZ_CHECK(barrage::scan_output(path, true, &first).empty());
  FUZZ_CHECK(first.keep_bytes <= file.size());
  FUZZ_CHECK(first.torn == (first.keep_bytes < file.size()));
  FUZZ_CHECK(first.keep_bytes == 0 || file[first.keep_bytes - 1] == '\n');
  FUZZ_CHECK(lseek(fd, 0, SEEK_END) == off_t(first.keep_bytes));
  // What was cut held no recorded line: a second scan finds the same ids.
  barrage::ResumeState second;
  FUZZ_CHECK(barrage::scan_output(path, false, &second).empty());
  FUZZ_CHECK(second.custom_ids == first.custom_ids);
  FUZZ_CHECK(second.invalid_lines == first.invalid_lines);
  FUZZ_CHECK(second.keep_bytes <= first.keep_bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char* const kEndpoints[] = {"https://api.openai.com/v1", "http://127.0.0.1:8080",
                                           "https://[::1]:8443/v1", "https://example.com/proxy/v1"};
  fuzz::Input in(data, size);
  const uint8_t flags = in.byte();
  const std::string_view payload = in.rest();
  if (flags & 0x80) {
    check_resume(payload);
    return 0;
  }
  // Parsers are made once per endpoint, as the batch runner keeps one.
  static InputLineParser* parsers[4] = {};
  if (!parsers[flags & 3]) parsers[flags & 3] = new InputLineParser(kEndpoints[flags & 3]);
  InputLineParser& p = *parsers[flags & 3];
  const std::string_view first = payload.substr(0, payload.find('\n'));
  const std::string_view second =
      first.size() < payload.size() ? payload.substr(first.size() + 1) : std::string_view();
  const Parsed once = parse(p, first, 1);
  (void)parse(p, second, 2);
  FUZZ_CHECK(parse(p, first, 1) == once);  // nothing from the other line leaks into it
  return 0;
}
