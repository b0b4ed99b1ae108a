// The LLM traffic the micro suites feed the engine: a chat request body and
// ~600-byte answers in OpenAI and Anthropic shape, shared so that the HTTP and
// batch figures are about the same bytes. The usage numbers are what the
// checks expect back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace barrage::bench {

inline constexpr int64_t kPromptTokens = 31;
inline constexpr int64_t kCompletionTokens = 52;
inline constexpr int64_t kMaxTokens = 120;

// Pretty-printed, as OpenAI's API sends it: the line breaks matter to the
// batch output line, which must turn them into spaces.
inline constexpr std::string_view kOpenAiAnswer = R"({
  "id": "chatcmpl-AXk2bR7Qm3Lz9vTn0pYcW5sHd8Ef",
  "object": "chat.completion",
  "created": 1732412345,
  "model": "gpt-4o-mini-2024-07-18",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "Water evaporates from seas and plants, cools into clouds and falls back as rain or snow.",
        "refusal": null
      },
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": 31,
    "completion_tokens": 52,
    "total_tokens": 83,
    "prompt_tokens_details": {"cached_tokens": 0}
  },
  "system_fingerprint": "fp_0ba0d124f1"
}
)";

inline constexpr std::string_view kAnthropicAnswer =
    R"({"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant",)"
    R"("model":"claude-3-5-sonnet-20241022","content":[{"type":"text","text":"Water )"
    R"(evaporates from seas, lakes and plants, rises as vapour, cools and condenses into )"
    R"(clouds. It falls back as rain or snow, gathers in rivers and groundwater, and flows )"
    R"(back to the sea, where the cycle starts again. Sunlight drives the whole loop."}],)"
    R"("stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":31,)"
    R"("cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":52}})";

// A chat completion request whose user message is `prompt_bytes` long, with
// max_tokens last, as the examples write it, so a parser that looks for it
// has to get past the messages first.
inline std::string chat_request_body(size_t prompt_bytes) {
  std::string prompt;
  prompt.reserve(prompt_bytes);
  static constexpr std::string_view kWords = "Explain the water cycle in two sentences, simply. ";
  while (prompt.size() < prompt_bytes) prompt += kWords.substr(0, prompt_bytes - prompt.size());
  return R"({"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a concise teacher."},)"
         R"({"role":"user","content":")" +
         prompt + R"("}],"max_tokens":)" + std::to_string(kMaxTokens) + "}";
}

}  // namespace barrage::bench
