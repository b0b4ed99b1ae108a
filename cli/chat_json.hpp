// The JSON the demo sends and reads: OpenAI chat-completion request bodies,
// and the two things it checks in an answer (the message text and "usage").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace barrage::cli {

// A realistic chat-completion body asking to summarise document `index`.
// The user message starts with "Summarise document <index>:" so that an
// echoing server's answer names the request it answers.
std::string chat_request_body(size_t index);

// The marker an answer to request `index` must contain ("document 7:"). The
// colon keeps "document 1" from matching the answer to "document 12".
std::string echo_marker(size_t index);

struct ChatAnswer {
  std::string content;             // choices[0].message.content
  int64_t prompt_tokens = -1;      // usage.prompt_tokens, -1 when absent
  int64_t completion_tokens = -1;  // usage.completion_tokens, -1 when absent
};

// Parses a chat.completion body. Returns false (with *err) when it is not
// JSON or has no choices[0].message.content string.
bool parse_chat_answer(std::string_view body, ChatAnswer* out, std::string* err);

}  // namespace barrage::cli
