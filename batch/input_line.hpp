// One line of an OpenAI Batch API input file: parsed, checked and resolved
// into what the engine needs, or the reason it cannot run.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace barrage {

struct InputLine {
  enum class Kind { blank, valid, invalid };
  Kind kind = Kind::blank;
  bool has_custom_id = false;  // a non-empty string custom_id was found (also when invalid)
  std::string custom_id;
  std::string url;        // absolute, when valid
  std::string_view body;  // the "body" value's bytes exactly as in the line
  std::string model;      // body.model, "" if absent
  std::string error;      // when invalid: "line N: why"
};

class InputLineParser {
 public:
  // endpoint: "https://host[:port][/prefix]" without a trailing slash, the
  // base for relative urls (see batch_options.hpp).
  explicit InputLineParser(std::string endpoint);
  ~InputLineParser();
  InputLineParser(const InputLineParser&) = delete;
  InputLineParser& operator=(const InputLineParser&) = delete;

  // `text` must have kLinePadding readable bytes behind it (LineReader's
  // lines have). out->body points into text.
  void parse(std::string_view text, uint64_t line_number, InputLine* out);

  // "/v1/chat/completions" or "https://..." -> absolute URL, or "" with *why.
  std::string resolve_url(std::string_view url, std::string* why) const;

 private:
  struct Parsers;
  std::string endpoint_;
  std::string endpoint_without_v1_;  // endpoint_ minus a trailing "/v1", or ""
  bool endpoint_http_ = false;
  std::unique_ptr<Parsers> parsers_;
};

}  // namespace barrage
