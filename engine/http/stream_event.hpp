// What one server-sent event of a streamed LLM answer says: whether it
// carries generated output (the first such event is the "first token"),
// whether it ends the stream, and any token usage it reports. Knows the
// stream shapes of OpenAI (chat, completions, Responses API) and Anthropic.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "http/usage.hpp"

namespace simdjson::dom {
class parser;
}

namespace barrage::http {

struct StreamEventInfo {
  bool token = false;  // non-empty generated output (text, reasoning, tool call)
  bool done = false;   // OpenAI's "[DONE]" sentinel: not an event for the caller
  Usage usage;         // -1 where the event says nothing
};

// One reader per engine (reactor thread); its parser and buffer are reused.
class StreamEventReader {
 public:
  StreamEventReader();
  ~StreamEventReader();
  StreamEventReader(const StreamEventReader&) = delete;
  StreamEventReader& operator=(const StreamEventReader&) = delete;

  // Data that is not JSON is neither a token nor usage (never throws).
  StreamEventInfo read(std::string_view data) noexcept;

 private:
  std::unique_ptr<simdjson::dom::parser> parser_;
  std::string padded_;  // data copied with simdjson's padding after it
};

}  // namespace barrage::http
