// Pulls the few fields the mock needs out of an OpenAI request body with a
// small hand-written JSON reader, so the mock depends on nothing but OpenSSL
// and stays an independent peer of the engine's simdjson code.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace barrage::mock {

// What the mock echoes back. Reused across requests by one worker so that
// steady state does not allocate.
struct RequestFields {
  std::string model;      // "model", "" when absent or not a string
  std::string last_text;  // decoded: last user message / last prompt / last input
  bool has_text = false;
  bool stream = false;         // "stream": true
  bool include_usage = false;  // "stream_options": {"include_usage": true}
  std::vector<uint64_t> input_hashes;  // embeddings: one hash per input
  std::string scratch;                // decode buffer, not a result

  void clear();
};

// Scans `body`, which must be one JSON object (nesting at most 64 deep).
// Understands chat "messages" (string content or an array of text parts),
// completions "prompt" and embeddings "input" (string, array of strings,
// token array or array of token arrays). Returns false for anything that is
// not well-formed JSON.
bool scan_request_json(std::string_view body, RequestFields* out);

// Appends s as a JSON string literal (with quotes). Control characters are
// escaped and invalid UTF-8 becomes U+FFFD, so the output always parses.
void append_json_string(std::string& out, std::string_view s);
// The same without the surrounding quotes.
void append_json_escaped(std::string& out, std::string_view s);

// s cut to at most max_chars code points, never inside a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view s, size_t max_chars);

// Number of whitespace-separated words in s.
uint64_t count_words(std::string_view s);

// 64-bit FNV-1a: deterministic across runs and platforms.
uint64_t fnv1a(std::string_view s, uint64_t seed = 0xcbf29ce484222325ULL);

}  // namespace barrage::mock
