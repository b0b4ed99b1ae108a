// Classifying streamed events with simdjson. "Non-empty delta" follows what
// a user sees as output starting: a role-only or empty first chunk (OpenAI
// sends one) is not a token; text, reasoning, refusals and tool-call pieces are.
#include "http/stream_event.hpp"

#include "http/usage_json.hpp"

namespace barrage::http {
namespace {

using simdjson::SUCCESS;
using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

bool non_empty_string(object o, std::string_view key) noexcept {
  std::string_view s;
  return o[key].get_string().get(s) == SUCCESS && !s.empty();
}

bool non_empty_array(object o, std::string_view key) noexcept {
  array a;
  return o[key].get_array().get(a) == SUCCESS && a.size() > 0;
}

// OpenAI chat (choices[].delta) and legacy completions (choices[].text).
bool openai_choices_token(object root) noexcept {
  array choices;
  if (root["choices"].get_array().get(choices) != SUCCESS) return false;
  for (element c : choices) {
    object choice;
    if (c.get_object().get(choice) != SUCCESS) continue;
    if (non_empty_string(choice, "text")) return true;
    object delta;
    if (choice["delta"].get_object().get(delta) != SUCCESS) continue;
    if (non_empty_string(delta, "content") || non_empty_string(delta, "reasoning_content") ||
        non_empty_string(delta, "reasoning") || non_empty_string(delta, "refusal") ||
        non_empty_array(delta, "tool_calls"))
      return true;
    object fn;
    if (delta["function_call"].get_object().get(fn) == SUCCESS) return true;
  }
  return false;
}

// Anthropic content_block_delta and OpenAI Responses API *.delta events.
bool typed_delta_token(object root, std::string_view type) noexcept {
  if (type == "content_block_delta") {
    object delta;
    if (root["delta"].get_object().get(delta) != SUCCESS) return false;
    return non_empty_string(delta, "text") || non_empty_string(delta, "partial_json") ||
           non_empty_string(delta, "thinking");
  }
  if (type.starts_with("response.") && type.ends_with(".delta")) return non_empty_string(root, "delta");
  return false;
}

}  // namespace

StreamEventReader::StreamEventReader() : parser_(std::make_unique<simdjson::dom::parser>()) {}
StreamEventReader::~StreamEventReader() = default;

StreamEventInfo StreamEventReader::read(std::string_view data) noexcept {
  StreamEventInfo info;
  if (data == "[DONE]") {
    info.done = true;
    return info;
  }
  try {
    padded_.reserve(data.size() + simdjson::SIMDJSON_PADDING);
    padded_.assign(data);
    element doc;
    if (parser_->parse(padded_.data(), padded_.size(), /*realloc_if_needed=*/false).get(doc) != SUCCESS)
      return info;
    object root;
    if (doc.get_object().get(root) != SUCCESS) return info;
    std::string_view type;
    if (root["type"].get_string().get(type) == SUCCESS)
      info.token = typed_delta_token(root, type);
    else
      info.token = openai_choices_token(root);
    object usage;
    if (root["usage"].get_object().get(usage) == SUCCESS) {
      info.usage = usage_from(usage);
    } else if (type == "message_start" || type == "response.completed") {
      // Anthropic and the Responses API nest the usage in the message/response.
      object inner;
      if ((root["message"].get_object().get(inner) == SUCCESS || root["response"].get_object().get(inner) == SUCCESS) &&
          inner["usage"].get_object().get(usage) == SUCCESS)
        info.usage = usage_from(usage);
    }
  } catch (...) {
    return StreamEventInfo{};
  }
  return info;
}

}  // namespace barrage::http
