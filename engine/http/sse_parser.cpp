// The SSE line machine. Lines are found with memchr and handed on as views
// into the piece whenever they lie inside it; only a line that spans pieces
// and data that must outlive the piece are copied.
#include "http/sse_parser.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace barrage::http {
namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";

// What a parser may keep for the next stream after reset(): a rare huge
// event is not pinned for a connection's lifetime.
constexpr size_t kKeptCapacity = 64 * 1024;

// Offset of the first c at or after `from`, or piece.size().
size_t find_byte(std::string_view piece, size_t from, char c) noexcept {
  const void* at = std::memchr(piece.data() + from, c, piece.size() - from);
  return at ? static_cast<size_t>(static_cast<const char*>(at) - piece.data()) : piece.size();
}

// The spec accepts ASCII digits only: no sign, no space, not empty. A value
// beyond int64 is ignored like any other invalid one.
bool parse_retry(std::string_view value, int64_t& out) noexcept {
  if (value.empty()) return false;
  for (const char c : value) {
    if (c < '0' || c > '9') return false;
  }
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size()) return false;
  out = v;
  return true;
}

void shrink_if_huge(std::string& s) noexcept {
  s.clear();
  if (s.capacity() > kKeptCapacity) std::string().swap(s);
}

}  // namespace

SseParser::SseParser(size_t max_event_bytes) noexcept : max_event_bytes_(max_event_bytes) {}

void SseParser::reset() noexcept {
  shrink_if_huge(line_);
  shrink_if_huge(data_);
  shrink_if_huge(type_);
  shrink_if_huge(last_id_);
  borrowed_data_ = {};
  borrowed_ = false;
  has_data_ = false;
  pending_cr_ = false;
  finished_ = false;
  failed_ = false;
  bom_matched_ = 0;
  bom_checked_ = false;
  retry_ms_ = -1;
  events_ = 0;
  error_len_ = 0;
}

void SseParser::fail(std::string_view message) noexcept {
  // The first failure is the cause; later calls only report it.
  if (failed_) return;
  failed_ = true;
  error_len_ = std::min(message.size(), sizeof error_);
  std::memcpy(error_, message.data(), error_len_);
}

void SseParser::fail_too_large() noexcept {
  char buf[sizeof error_];
  const std::string_view head = "SSE event exceeds ";
  const std::string_view tail = " bytes";
  char* out = std::copy(head.begin(), head.end(), buf);
  out = std::to_chars(out, buf + sizeof buf - tail.size(), max_event_bytes_).ptr;
  out = std::copy(tail.begin(), tail.end(), out);
  fail(std::string_view(buf, static_cast<size_t>(out - buf)));
}

// Appends the start of a line that continues in a later piece. Checked
// before growing, so a line without an end cannot pin more than the limit.
bool SseParser::hold_partial(std::string_view bytes) noexcept {
  const size_t used = data_bytes() + line_.size();
  if (used > max_event_bytes_ || bytes.size() > max_event_bytes_ - used) {
    fail_too_large();
    return false;
  }
  try {
    line_.append(bytes);
  } catch (...) {
    fail("out of memory while parsing SSE stream");
    return false;
  }
  return true;
}

// Copies borrowed data into data_, before the piece it points into goes away.
bool SseParser::own_data() noexcept {
  if (!borrowed_) return true;
  try {
    data_.assign(borrowed_data_);
  } catch (...) {
    fail("out of memory while parsing SSE stream");
    return false;
  }
  borrowed_ = false;
  borrowed_data_ = {};
  return true;
}

// May throw std::bad_alloc; on_line turns that into an error.
void SseParser::add_data(std::string_view value, bool in_piece) {
  if (!has_data_) {
    has_data_ = true;
    // The common event is one data line inside one piece: no copy at all.
    if (in_piece) {
      borrowed_ = true;
      borrowed_data_ = value;
    } else {
      data_.assign(value);
    }
    return;
  }
  if (borrowed_) {
    data_.assign(borrowed_data_);
    borrowed_ = false;
    borrowed_data_ = {};
  }
  // The spec appends "\n" after every line and drops the last one.
  data_ += '\n';
  data_.append(value);
}

SseParser::LineResult SseParser::on_line(std::string_view line, bool in_piece, Sink sink, void* ctx) noexcept {
  if (line.empty()) {
    bool go_on = true;
    if (has_data_) {
      const SseEvent event{type_.empty() ? std::string_view("message") : std::string_view(type_),
                           borrowed_ ? borrowed_data_ : std::string_view(data_), last_id_};
      ++events_;
      go_on = sink(ctx, event);
    }
    data_.clear();
    type_.clear();
    borrowed_data_ = {};
    borrowed_ = false;
    has_data_ = false;
    return go_on ? LineResult::next : LineResult::stop;
  }
  if (line.front() == ':') return LineResult::next;  // a comment, e.g. a keep-alive ping

  const size_t colon = line.find(':');
  const std::string_view name = line.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  try {
    if (name == "data") {
      add_data(value, in_piece);
    } else if (name == "event") {
      type_.assign(value);
    } else if (name == "id") {
      // An id with NUL is ignored: browsers could not hand it back in a
      // Last-Event-ID header.
      if (value.find('\0') == std::string_view::npos) last_id_.assign(value);
    } else if (name == "retry") {
      parse_retry(value, retry_ms_);
    }
  } catch (...) {
    fail("out of memory while parsing SSE stream");
    return LineResult::fail;
  }
  return LineResult::next;
}

size_t SseParser::skip_bom(std::string_view piece) noexcept {
  size_t pos = 0;
  while (bom_matched_ < kBom.size() && pos < piece.size()) {
    if (piece[pos] != kBom[bom_matched_]) {
      // Not a BOM after all: the bytes taken for one start the first line.
      bom_checked_ = true;
      if (bom_matched_ > 0) hold_partial(kBom.substr(0, bom_matched_));  // failure is seen in failed_
      return pos;
    }
    ++bom_matched_;
    ++pos;
  }
  if (bom_matched_ == kBom.size()) bom_checked_ = true;
  return pos;
}

SseParser::Status SseParser::feed_with(std::string_view piece, Sink sink, void* ctx, size_t* consumed) noexcept {
  if (consumed) *consumed = 0;
  if (finished_) fail("SSE stream fed after finish()");
  if (failed_) return Status::error;

  size_t pos = 0;
  const size_t n = piece.size();
  if (!bom_checked_) {
    pos = skip_bom(piece);
    if (failed_) return Status::error;
  }
  if (pending_cr_ && pos < n) {
    pending_cr_ = false;
    if (piece[pos] == '\n') ++pos;
  }

  // Each terminator is searched for once per piece: a CR-only stream must
  // not rescan to the piece's end for LF on every line.
  size_t next_lf = find_byte(piece, pos, '\n');
  size_t next_cr = find_byte(piece, pos, '\r');
  while (pos < n) {
    if (next_lf < pos) next_lf = find_byte(piece, pos, '\n');
    if (next_cr < pos) next_cr = find_byte(piece, pos, '\r');
    const size_t eol = std::min(next_lf, next_cr);
    if (eol == n) {
      if (!hold_partial(piece.substr(pos))) return Status::error;
      pos = n;
      break;
    }

    std::string_view line = piece.substr(pos, eol - pos);
    const bool in_piece = line_.empty();
    if (in_piece) {
      if (data_bytes() > max_event_bytes_ || line.size() > max_event_bytes_ - data_bytes()) {
        fail_too_large();
        return Status::error;
      }
    } else {
      if (!hold_partial(line)) return Status::error;
      line = line_;
    }

    pos = eol + 1;
    if (piece[eol] == '\r') {
      // A CR ends the line at once, so an event is not held back waiting
      // for a byte that may never come; an LF right after it is skipped.
      if (pos == n) {
        pending_cr_ = true;
      } else if (piece[pos] == '\n') {
        ++pos;
      }
    }

    const LineResult r = on_line(line, in_piece, sink, ctx);
    if (!in_piece) line_.clear();
    if (r == LineResult::fail) return Status::error;
    if (r == LineResult::stop) {
      if (consumed) *consumed = pos;
      return Status::stopped;
    }
  }

  if (!own_data()) return Status::error;
  if (consumed) *consumed = n;
  return Status::ok;
}

SseParser::Status SseParser::finish() noexcept {
  if (failed_) return Status::error;
  // The spec discards an event without its empty line, and a partial line.
  line_.clear();
  data_.clear();
  type_.clear();
  borrowed_data_ = {};
  borrowed_ = false;
  has_data_ = false;
  pending_cr_ = false;
  finished_ = true;
  return Status::ok;
}

}  // namespace barrage::http
