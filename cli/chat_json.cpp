// Chat-completion bodies for the demo, and their answers parsed with
// simdjson (the project's JSON library) rather than by substring search, so
// a body that merely contains the right words somewhere does not pass.
#include "chat_json.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <array>

namespace barrage::cli {
namespace {

// A few different documents, so the bodies vary in size like real ones.
constexpr std::array<std::string_view, 4> kDocuments = {
    "The quarterly report covers revenue growth in three regions, a hiring freeze in "
    "operations and the roadmap for the next two product releases.",
    "Meeting notes: the team agreed to move the database migration to the weekend, "
    "add a canary stage to deployments and revisit on-call rotations in May.",
    "Customer ticket: the export button produces an empty CSV file when the date filter "
    "spans a daylight saving change; the customer attached two screenshots.",
    "Research abstract: we measure tail latency of batched LLM inference under bursty "
    "load and show that admission control halves the p99 at equal throughput.",
};

}  // namespace

std::string chat_request_body(size_t index) {
  // The documents contain no characters that need JSON escaping.
  return fmt::format(
      R"({{"model":"mock-1","messages":[)"
      R"({{"role":"system","content":"You are a concise assistant. Answer in two sentences."}},)"
      R"({{"role":"user","content":"Summarise document {}: {}"}}],)"
      R"("temperature":0.2,"max_tokens":128}})",
      index, kDocuments[index % kDocuments.size()]);
}

std::string echo_marker(size_t index) { return fmt::format("document {}:", index); }

bool parse_chat_answer(std::string_view body, ChatAnswer* out, std::string* err) {
  using namespace simdjson;
  ondemand::parser parser;
  padded_string padded(body);
  ondemand::document doc;
  if (auto e = parser.iterate(padded).get(doc); e != SUCCESS) {
    *err = fmt::format("answer is not JSON ({})", error_message(e));
    return false;
  }
  ondemand::object root;
  if (auto e = doc.get_object().get(root); e != SUCCESS) {
    *err = fmt::format("answer is not a JSON object ({})", error_message(e));
    return false;
  }
  // Fields are read in the order OpenAI (and the mock) send them; on-demand
  // parsing finds out-of-order keys too, just more slowly.
  std::string_view content;
  auto e = root["choices"].at(0)["message"]["content"].get_string().get(content);
  if (e != SUCCESS) {
    *err = fmt::format("answer has no choices[0].message.content string ({})", error_message(e));
    return false;
  }
  out->content.assign(content);
  out->prompt_tokens = -1;
  out->completion_tokens = -1;
  ondemand::object usage;
  if (root["usage"].get_object().get(usage) == SUCCESS) {
    int64_t v = 0;
    if (usage["prompt_tokens"].get_int64().get(v) == SUCCESS) out->prompt_tokens = v;
    if (usage["completion_tokens"].get_int64().get(v) == SUCCESS) out->completion_tokens = v;
  }
  return true;
}

}  // namespace barrage::cli
