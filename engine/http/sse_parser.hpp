// Incremental server-sent events (text/event-stream) parser for streaming LLM
// answers, after WHATWG HTML's "event stream interpretation". It is fed the
// decoded body in arbitrary pieces and calls back once per complete event.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

namespace barrage::http {

// One dispatched event. The views point into the parser's buffers or into
// the piece being fed, so they are valid only during the callback.
struct SseEvent {
  std::string_view type;  // the event: field, "message" if none or empty
  std::string_view data;  // the data: lines joined with "\n"
  std::string_view id;    // the last id: field of the stream so far, "" if none
};

// Bytes are passed through unchanged: no UTF-8 validation or replacement,
// which is left to the JSON parser that reads the data. Not thread-safe; one
// parser per stream, used from one thread (the reactor). Steady-state
// parsing does not allocate: buffers keep their capacity across events, and
// an event whose lines all arrive in one piece is handed out without copying
// its data.
class SseParser {
 public:
  // stopped: the callback returned false (not sticky: the rest may be fed).
  // error: the size limit was exceeded, memory ran out, or feed() followed
  // finish(); sticky until reset(), see error().
  enum class Status { ok, stopped, error };

  // max_event_bytes bounds one event's joined data plus the line being read
  // (comments included), and with it the memory a stream can pin.
  explicit SseParser(size_t max_event_bytes) noexcept;

  // Calls on_event(const SseEvent&) -> bool for each event completed by
  // `piece`, in order. on_event must be noexcept, and must not call feed(),
  // finish() or reset() on this parser. If it returns false, feed() returns
  // stopped right after that event's terminating line end: *consumed tells
  // how many bytes of `piece` were used, and the parser is ready for the
  // rest. Otherwise *consumed is piece.size() on ok and 0 on error (events
  // before the failing line have still been delivered). The parser keeps no
  // pointer into `piece` after returning.
  template <class F>
  Status feed(std::string_view piece, F&& on_event, size_t* consumed = nullptr) noexcept {
    using Fn = std::remove_reference_t<F>;
    static_assert(std::is_nothrow_invocable_r_v<bool, Fn&, const SseEvent&>,
                  "on_event must be noexcept and return bool");
    // A captureless thunk keeps the parsing out of the header: one copy in
    // the .cpp, whatever the callback type.
    Sink sink = [](void* ctx, const SseEvent& event) noexcept -> bool {
      return (*static_cast<Fn*>(ctx))(event);
    };
    return feed_with(piece, sink, const_cast<void*>(static_cast<const void*>(std::addressof(on_event))),
                     consumed);
  }

  // End of stream. An unterminated event (data not followed by an empty
  // line, or a partial last line) is discarded, as the spec requires; ask
  // mid_event() before calling this to tell a stream that was cut short.
  // Returns ok, or error if the parser had already failed.
  Status finish() noexcept;

  // Starts a new stream: clears events, id, retry, error and the BOM check,
  // keeping buffer capacity (unless a huge event left them oversized).
  void reset() noexcept;

  // True when bytes of an unfinished event are held: undispatched data or
  // part of a line.
  bool mid_event() const noexcept { return has_data_ || !line_.empty(); }
  // The last valid retry: field in milliseconds, -1 if none.
  int64_t retry_ms() const noexcept { return retry_ms_; }
  // The last id: field, kept across events as the spec's "last event ID".
  std::string_view last_id() const noexcept { return last_id_; }
  // Events dispatched since construction or reset().
  size_t events() const noexcept { return events_; }
  // Why the parser failed; empty unless a call returned error.
  std::string_view error() const noexcept { return {error_, error_len_}; }
  size_t max_event_bytes() const noexcept { return max_event_bytes_; }

 private:
  using Sink = bool (*)(void* ctx, const SseEvent& event) noexcept;
  enum class LineResult { next, stop, fail };

  Status feed_with(std::string_view piece, Sink sink, void* ctx, size_t* consumed) noexcept;
  size_t skip_bom(std::string_view piece) noexcept;
  bool hold_partial(std::string_view bytes) noexcept;
  LineResult on_line(std::string_view line, bool in_piece, Sink sink, void* ctx) noexcept;
  void add_data(std::string_view value, bool in_piece);
  bool own_data() noexcept;
  size_t data_bytes() const noexcept { return borrowed_ ? borrowed_data_.size() : data_.size(); }
  void fail(std::string_view message) noexcept;
  void fail_too_large() noexcept;

  size_t max_event_bytes_;
  std::string line_;  // a line that spans pieces; empty otherwise
  std::string data_;  // the event's data, unless borrowed from the piece
  std::string type_;
  std::string last_id_;
  // The event's only data line so far, still inside the piece being fed;
  // copied into data_ before feed() returns or when a second line comes.
  std::string_view borrowed_data_;
  bool borrowed_ = false;
  bool has_data_ = false;    // a data: field was seen since the last empty line
  bool pending_cr_ = false;  // the last piece ended in CR: an LF next is the same line end
  bool finished_ = false;
  bool failed_ = false;
  uint8_t bom_matched_ = 0;  // BOM bytes seen at the start of the stream so far
  bool bom_checked_ = false;
  int64_t retry_ms_ = -1;
  size_t events_ = 0;
  // A fixed buffer, so that failing (out of memory included) never allocates.
  char error_[48] = {};
  size_t error_len_ = 0;
};

}  // namespace barrage::http
