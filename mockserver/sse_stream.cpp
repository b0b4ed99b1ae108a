// The schedule and event order of a paced streaming answer (see
// sse_stream.hpp).
#include "sse_stream.hpp"

#include <algorithm>

#include "http_request.hpp"
#include "mock_server.hpp"
#include "request_json.hpp"

namespace barrage::mock {
namespace {

// A header, when it holds a number, else the global value; both clamped.
int64_t count_control(std::string_view header, int64_t global) {
  uint64_t v = 0;
  if (!header.empty() && parse_u64(header, &v)) {
    return static_cast<int64_t>(std::min<uint64_t>(v, kMaxStreamTokens));
  }
  return global < 0 ? -1 : std::min<int64_t>(global, kMaxStreamTokens);
}

uint64_t gap_control(std::string_view header, uint64_t global) {
  uint64_t v = global;
  if (!header.empty()) parse_u64(header, &v);  // leaves v alone when not a number
  return std::min(v, kMaxStreamGapMs);
}

}  // namespace

StreamControls stream_controls(const MockOptions& opts, const HttpRequest& req) {
  StreamControls c;
  c.tokens = count_control(req.mock_stream_tokens, opts.stream_tokens);
  c.first_token_ms = gap_control(req.mock_first_token_ms, opts.first_token_ms);
  c.interval_ms = gap_control(req.mock_stream_interval_ms, opts.stream_interval_ms);
  c.stall_after = count_control(req.mock_stream_stall_after, opts.stream_stall_after);
  c.reset_after = count_control(req.mock_stream_reset_after, opts.stream_reset_after);
  return c;
}

SseStream::SseStream(const Answer& a, bool chat, bool include_usage, const StreamControls& c)
    : model_(a.model), answer_(a), chat_(chat), include_usage_(include_usage),
      words_(c.tokens < 0), stall_after_(c.stall_after), reset_after_(c.reset_after),
      first_token_ms_(c.first_token_ms), interval_ms_(c.interval_ms) {
  answer_.model = model_;
  answer_.content = {};
  if (words_) {
    content_.assign(a.content);
    total_ = count_words(content_);
  } else {
    total_ = static_cast<uint64_t>(c.tokens);
  }
  // The usage chunk reports exactly the token events the stream carries.
  answer_.completion_tokens = total_;
}

void SseStream::append_opening(std::string& out, std::string& tmp) const {
  if (chat_) append_sse_event(out, tmp, answer_, chat_, SseEvent::kRole, {});
}

void SseStream::start(uint64_t now_us) {
  started_ = true;
  first_due_ = now_us + first_token_ms_ * 1000;
  next_due_ = first_due_;
}

SseStream::Next SseStream::next() const {
  // A count beyond the tokens there are acts after the last one, before
  // the finish chunk: asking for a stall or reset always gets one.
  auto reached = [this](int64_t after) {
    return after >= 0 && sent_ >= std::min<uint64_t>(static_cast<uint64_t>(after), total_);
  };
  if (reached(reset_after_)) return Next::kReset;
  if (reached(stall_after_)) return Next::kStall;
  return sent_ < total_ ? Next::kToken : Next::kTail;
}

void SseStream::append_token(std::string& out, std::string& tmp) {
  if (words_) {
    std::string_view rest(content_);
    rest.remove_prefix(content_off_);
    size_t n = next_word_piece(rest);
    append_sse_event(out, tmp, answer_, chat_, SseEvent::kPiece, rest.substr(0, n));
    content_off_ += n;
  } else {
    // " tok1", " tok2", ...: deterministic and easy to check in order.
    std::string piece = " tok";
    append_u64(piece, sent_ + 1);
    append_sse_event(out, tmp, answer_, chat_, SseEvent::kPiece, piece);
  }
  ++sent_;
  // Planned from the first token's planned time: a late wake-up delays this
  // event only, never the ones after it.
  next_due_ = first_due_ + sent_ * interval_ms_ * 1000;
}

void SseStream::append_tail(std::string& out, std::string& tmp) const {
  append_sse_event(out, tmp, answer_, chat_, SseEvent::kFinish, {});
  if (include_usage_) append_sse_usage(out, tmp, answer_, chat_);
  append_sse_done(out);
}

}  // namespace barrage::mock
