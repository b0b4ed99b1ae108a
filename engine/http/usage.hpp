// Token usage of an LLM answer, read from its JSON "usage" object, so the
// tokens-per-minute bucket can be settled with real numbers and costs summed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace simdjson::dom {
class parser;
}

namespace barrage::http {

struct Usage {
  int64_t prompt_tokens = -1;      // -1: unknown
  int64_t completion_tokens = -1;  // -1: unknown
};

// Reads the top-level "usage" of an LLM JSON answer with simdjson: OpenAI
// prompt_tokens/completion_tokens, else Anthropic (and OpenAI Responses API)
// input_tokens/output_tokens. Anything unparsable, absent, negative or not an
// integer leaves -1; a document that is not valid JSON leaves both -1.
// Never throws. Takes std::string& so it can reserve SIMDJSON_PADDING in
// place (no copy of the body); the string's contents are unchanged, its
// capacity may grow.
Usage extract_usage(std::string& body) noexcept;

// The same with a parser kept between calls (its buffers are reused), owned
// by whoever reads many answers: the engine holds one.
class UsageReader {
 public:
  UsageReader();
  ~UsageReader();
  UsageReader(const UsageReader&) = delete;
  UsageReader& operator=(const UsageReader&) = delete;
  Usage read(std::string& body) noexcept;

 private:
  std::unique_ptr<simdjson::dom::parser> parser_;
};

}  // namespace barrage::http
