// Output line formatting. The answer body is checked with simdjson before it
// is embedded raw: one HTML error page from a proxy must not turn the output
// file into something no JSON reader (nor our own resume) can read.
#include "batch/output_line.hpp"

#include <simdjson.h>

#include <cstring>

#include "barrage.h"
#include "batch/json_text.hpp"

namespace barrage {

std::string status_error_code(int status) {
  const char* name = nullptr;
  switch (status) {
#define BRG_BATCH_NAME_(n, code, text) \
  case code:                           \
    name = #n;                         \
    break;
    BRG_STATUS_MAP(BRG_BATCH_NAME_)
#undef BRG_BATCH_NAME_
  }
  if (!name) return "unknown";
  std::string code = name;
  for (char& c : code)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return code;
}

struct OutputLineFormatter::Validator {
  simdjson::dom::parser parser;
  std::unique_ptr<char[]> scratch;
  size_t cap = 0;

  bool is_json(std::string_view body) {
    if (body.empty()) return false;
    if (cap < body.size()) {
      cap = std::max(body.size(), cap * 2);
      scratch.reset(new char[cap + simdjson::SIMDJSON_PADDING]);
    }
    std::memcpy(scratch.get(), body.data(), body.size());
    simdjson::dom::element doc;
    bool ok = parser.parse(scratch.get(), body.size(), false).get(doc) == simdjson::SUCCESS;
    // One huge answer must not pin its parser buffers for the whole batch.
    if (body.size() > (size_t(4) << 20)) {
      parser = simdjson::dom::parser();
      scratch.reset();
      cap = 0;
    }
    return ok;
  }
};

OutputLineFormatter::OutputLineFormatter() : validator_(std::make_unique<Validator>()) {}
OutputLineFormatter::~OutputLineFormatter() = default;

void OutputLineFormatter::append_body(std::string_view body) {
  if (!validator_->is_json(body)) {
    append_json_string(line_, body);
    return;
  }
  size_t at = line_.size();
  line_ += body;
  for (size_t i = at; i < line_.size(); ++i)
    if (line_[i] == '\n' || line_[i] == '\r') line_[i] = ' ';
}

const std::string& OutputLineFormatter::format(const OutputRecord& r) {
  line_.clear();
  line_ += "{\"id\":";
  append_json_string(line_, r.id);
  line_ += ",\"custom_id\":";
  if (r.has_custom_id)
    append_json_string(line_, r.custom_id);
  else
    line_ += "null";
  line_ += ",\"response\":";
  if (r.has_response) {
    line_ += "{\"status_code\":";
    append_json_int(line_, r.status_code);
    line_ += ",\"request_id\":";
    if (r.has_request_id)
      append_json_string(line_, r.request_id);
    else
      line_ += "null";
    line_ += ",\"body\":";
    append_body(r.body);
    line_ += '}';
  } else {
    line_ += "null";
  }
  line_ += ",\"error\":";
  if (r.error_code.empty()) {
    line_ += "null";
  } else {
    line_ += "{\"code\":";
    append_json_string(line_, r.error_code);
    line_ += ",\"message\":";
    append_json_string(line_, r.error_message);
    line_ += '}';
  }
  auto opt_int = [&](int64_t v) {
    if (v < 0)
      line_ += "null";
    else
      append_json_int(line_, v);
  };
  auto opt_ms = [&](int64_t us) {
    if (us < 0)
      line_ += "null";
    else
      append_json_fixed(line_, double(us) / 1000.0, 3);
  };
  line_ += ",\"barrage\":{\"line\":";
  append_json_int(line_, int64_t(r.line));
  line_ += ",\"attempts\":";
  append_json_int(line_, r.attempts);
  line_ += r.cached ? ",\"cached\":true" : ",\"cached\":false";
  line_ += ",\"latency_ms\":";
  opt_ms(r.latency_us);
  line_ += ",\"ttfb_ms\":";
  opt_ms(r.ttfb_us);
  line_ += ",\"prompt_tokens\":";
  opt_int(r.prompt_tokens);
  line_ += ",\"completion_tokens\":";
  opt_int(r.completion_tokens);
  line_ += ",\"model\":";
  if (r.model.empty())
    line_ += "null";
  else
    append_json_string(line_, r.model);
  line_ += ",\"cost_usd\":";
  if (r.cost_usd < 0)
    line_ += "null";
  else
    append_json_number(line_, r.cost_usd, 8);
  line_ += ",\"finished_unix_ms\":";
  append_json_int(line_, r.finished_unix_ms);
  line_ += "}}\n";
  return line_;
}

}  // namespace barrage
