// The one reading of a JSON "usage" object, shared by whole answers
// (usage.cpp) and streamed events (stream_event.cpp). Internal: it exposes
// simdjson, which the rest of the engine does not include.
#pragma once

#include <simdjson.h>

#include "http/usage.hpp"

namespace barrage::http {

// OpenAI prompt_tokens/completion_tokens, else input_tokens/output_tokens.
Usage usage_from(simdjson::dom::object usage) noexcept;

}  // namespace barrage::http
