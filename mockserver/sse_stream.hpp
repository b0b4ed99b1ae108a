// One paced streaming answer: which SSE event comes next and when it is
// due. The worker owns the socket and the timers; this owns the schedule,
// so the pacing rules live in one place and can be read without the loop.
//
// Timeline, all planned from one base (no drift: every deadline is computed
// from the base, never from when the previous event really left):
//   base       the headers and the role event have been written
//   T1 = base + first_token_ms          token 1
//   Tk = T1 + (k-1) * interval_ms       token k
//   after token N (at once)             finish chunk, usage chunk, [DONE], 0-chunk
// stall-after S / reset-after R replace everything after token S / R.
#pragma once

#include <cstdint>
#include <string>

#include "responses.hpp"

namespace barrage::mock {

struct HttpRequest;
struct MockOptions;

// Caps that keep base + N * interval (in µs) far from overflow.
inline constexpr int64_t kMaxStreamTokens = 100'000'000;
inline constexpr uint64_t kMaxStreamGapMs = 86'400'000;  // one day

struct StreamControls {
  int64_t tokens = -1;  // >=0: " tok1".." tokN"; -1: one per word of the answer
  uint64_t first_token_ms = 0;
  uint64_t interval_ms = 0;
  int64_t stall_after = -1;  // >=0: go silent after that many tokens
  int64_t reset_after = -1;  // >=0: RST after that many tokens
};

// The request's x-mock-stream-* headers over the global options; a header
// that is not a decimal number is ignored. Values are clamped to the caps.
StreamControls stream_controls(const MockOptions& opts, const HttpRequest& req);

class SseStream {
 public:
  enum class Next : uint8_t {
    kToken,  // append_token(), once due_ms() has come
    kTail,   // append_tail(), then the stream is over
    kStall,  // stop writing; keep the connection open
    kReset,  // stop writing; RST once what was written is ACKed
  };

  // Copies what it needs from `a` (model, and content when the tokens are
  // the answer's words), so the caller's buffers may be reused at once.
  SseStream(const Answer& a, bool chat, bool include_usage, const StreamControls& c);
  SseStream(const SseStream&) = delete;
  SseStream& operator=(const SseStream&) = delete;

  // The bytes sent with the headers: the role event for chat (OpenAI opens
  // with role "assistant" and empty content), nothing for completions.
  void append_opening(std::string& out, std::string& tmp) const;

  bool started() const { return started_; }
  // Fixes the schedule once the headers and opening are written; now_us
  // reads the steady clock in µs, and due_us() is on that clock.
  void start(uint64_t now_us);

  Next next() const;
  uint64_t due_us() const { return next_due_; }  // of the next token
  void append_token(std::string& out, std::string& tmp);
  void append_tail(std::string& out, std::string& tmp) const;

  uint64_t tokens_sent() const { return sent_; }
  uint64_t tokens_total() const { return total_; }

 private:
  std::string model_;
  std::string content_;     // the natural answer, when streamed word by word
  size_t content_off_ = 0;  // start of the next word piece
  Answer answer_;           // model view points into model_; content unused
  bool chat_;
  bool include_usage_;
  bool words_;  // tokens are the answer's words, not " tokK"
  uint64_t total_;
  int64_t stall_after_, reset_after_;
  uint64_t first_token_ms_, interval_ms_;
  bool started_ = false;
  uint64_t first_due_ = 0, next_due_ = 0;  // µs
  uint64_t sent_ = 0;
};

}  // namespace barrage::mock
