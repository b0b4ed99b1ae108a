// Response bodies in the shapes of OpenAI's API (chat.completion, its SSE
// chunks, text_completion, embeddings, error objects), appended to a
// caller-owned buffer so a worker can reuse its capacity.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace barrage::mock {

struct Answer {
  uint64_t id = 0;          // numeric part of "chatcmpl-<id>" / "cmpl-<id>"
  int64_t created = 0;      // unix seconds
  std::string_view model;
  std::string_view content;  // raw text; escaped when written
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
};

void append_u64(std::string& out, uint64_t v);

// {"id":"chatcmpl-..","object":"chat.completion",...,"usage":{...}}
void append_chat_body(std::string& out, const Answer& a);
// The same body split around the content string: the prefix ends with the
// content's opening quote and the suffix starts with its closing quote, so a
// caller can stream arbitrary (already JSON-safe) content in between.
void append_chat_prefix(std::string& out, const Answer& a);
void append_chat_suffix(std::string& out, const Answer& a);

// {"id":"cmpl-..","object":"text_completion",...}
void append_completion_body(std::string& out, const Answer& a);

// A streamed answer as HTTP chunked transfer coding, one SSE event per
// chunk: a role delta, one delta per word (with its leading whitespace, so
// the deltas concatenate to exactly a.content), a finish_reason chunk, a
// usage chunk if asked, "data: [DONE]" and the terminating zero chunk, all
// at once. Faults that cut or drip a body use it; a normal streaming answer
// is paced event by event instead (sse_stream.hpp). `chat` selects
// chat.completion.chunk or text_completion events. `tmp` is scratch space.
void append_sse_stream(std::string& out, const Answer& a, bool chat, bool include_usage,
                       std::string& tmp);

// The pieces append_sse_stream is made of, for a caller that writes them
// over time. Each appends one HTTP chunk holding one SSE event.
enum class SseEvent : uint8_t {
  kRole,    // chat only: delta {"role":"assistant","content":""}, as OpenAI opens a stream
  kPiece,   // delta content (chat) or text (completions) = piece
  kFinish,  // empty delta, finish_reason "stop"
};
void append_sse_event(std::string& out, std::string& tmp, const Answer& a, bool chat,
                      SseEvent kind, std::string_view piece);
// The include_usage chunk: empty choices and a.prompt/completion_tokens.
void append_sse_usage(std::string& out, std::string& tmp, const Answer& a, bool chat);
// "data: [DONE]" and the terminating zero-size chunk.
void append_sse_done(std::string& out);

// Length of the next streamed piece of `rest`: its leading whitespace and
// one word, plus any trailing whitespace when that word is the last. Splits
// where count_words() does, so a stream has count_words(content) pieces.
size_t next_word_piece(std::string_view rest);

// {"object":"list","data":[{"object":"embedding","index":i,"embedding":[8 floats]}],...}
// with one deterministic vector per input hash.
void append_embeddings_body(std::string& out, std::string_view model,
                            const std::vector<uint64_t>& input_hashes, uint64_t prompt_tokens);

// {"error":{"message":..,"type":..,"param":null,"code":..}}; code "" is null.
void append_error_body(std::string& out, std::string_view message, std::string_view type,
                       std::string_view code);

// The OpenAI error type and code for a status, and a message (as the real
// API words them where it has one).
struct ErrorShape {
  std::string_view message;
  std::string_view type;
  std::string_view code;
};
ErrorShape error_shape(int status);

std::string_view reason_phrase(int status);

}  // namespace barrage::mock
