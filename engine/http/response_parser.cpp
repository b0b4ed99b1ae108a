// llhttp glue for responses. llhttp is paused at the end of every message so
// that feed() stops exactly at a response boundary, and fed at most the
// remaining header budget at a time so that the header limit is exact.
#include "http/ascii.hpp"
#include "http/response_parser.hpp"

#include <algorithm>
#include <charconv>
#include <new>

namespace barrage::http {
namespace {


void trim_in_place(std::string& s) noexcept {
  size_t end = s.size();
  while (end > 0 && (s[end - 1] == ' ' || s[end - 1] == '\t')) --end;
  size_t begin = 0;
  while (begin < end && (s[begin] == ' ' || s[begin] == '\t')) ++begin;
  if (begin > 0) s.erase(0, begin);  // does not reallocate
  s.resize(end - begin);
}

// Larger Content-Length values are trusted only as far as the data arrives:
// a server announcing 64 MiB and sending nothing must not cost 64 MiB.
constexpr size_t kMaxBodyReserve = 1u << 20;
constexpr size_t kBodySlack = 64;  // >= simdjson::SIMDJSON_PADDING

// What an idle connection may keep for the next response. Typical LLM
// answers fit; a rare huge answer or a header flood is not pinned for the
// connection's lifetime.
constexpr size_t kKeptBodyCapacity = 1u << 20;

}  // namespace

// The llhttp callbacks. They run inside llhttp's C code, so no exception may
// leave them: allocation failures become Error::no_memory.
struct ResponseParser::Callbacks {
  static ResponseParser& self(llhttp_t* p) noexcept { return *static_cast<ResponseParser*>(p->data); }

  static int on_status_complete(llhttp_t* p) noexcept {
    ResponseParser& r = self(p);
    r.status_line_done_ = true;
    r.resp_.status_ = llhttp_get_status_code(p);
    return 0;
  }

  static int on_header_field(llhttp_t* p, const char* at, size_t len) noexcept {
    ResponseParser& r = self(p);
    // Trailers after a chunked body are not kept: nothing we act on is sent
    // there, and it keeps headers() equal to what the status came with.
    if (r.resp_.headers_complete_) return 0;
    try {
      if (!r.in_field_) {
        r.in_field_ = true;
        if (!r.resp_.new_header()) throw std::bad_alloc();
      }
      r.resp_.headers_.back().first.append(at, len);
    } catch (...) {
      r.fail(Error::no_memory, "out of memory while parsing response headers");
      return HPE_USER;
    }
    return 0;
  }

  static int on_header_field_complete(llhttp_t* p) noexcept {
    self(p).in_field_ = false;
    return 0;
  }

  static int on_header_value(llhttp_t* p, const char* at, size_t len) noexcept {
    ResponseParser& r = self(p);
    if (r.resp_.headers_complete_ || r.resp_.headers_.empty()) return 0;
    try {
      r.resp_.headers_.back().second.append(at, len);
    } catch (...) {
      r.fail(Error::no_memory, "out of memory while parsing response headers");
      return HPE_USER;
    }
    return 0;
  }

  static int on_header_value_complete(llhttp_t* p) noexcept {
    ResponseParser& r = self(p);
    if (!r.resp_.headers_complete_ && !r.resp_.headers_.empty()) trim_in_place(r.resp_.headers_.back().second);
    return 0;
  }

  static int on_headers_complete(llhttp_t* p) noexcept {
    ResponseParser& r = self(p);
    r.resp_.headers_complete_ = true;
    r.status_line_done_ = true;
    r.resp_.status_ = llhttp_get_status_code(p);
    if (r.resp_.status_ < 100) {
      r.fail(Error::protocol, "invalid HTTP status line");
      return -1;
    }
    if (r.resp_.status_ == 101) {
      // We never ask for an upgrade; the bytes that follow are not HTTP.
      r.fail(Error::protocol, "unexpected 101 Switching Protocols");
      return -1;
    }
    // llhttp leaves "this response has no body" to its caller (Node decides
    // it in JavaScript), so HEAD, 1xx, 204 and 304 are told here: a stray
    // Content-Length on them must not swallow the next response's bytes.
    const bool bodyless =
        r.head_request_ || r.resp_.status_ < 200 || r.resp_.status_ == 204 || r.resp_.status_ == 304;
    if (!bodyless && (p->flags & F_CONTENT_LENGTH) && !(p->flags & F_CHUNKED)) {
      if (p->content_length > r.limits_.max_body_bytes) {
        r.fail_too_large("response body exceeds ", r.limits_.max_body_bytes);
        return -1;
      }
      try {
        // The slack is simdjson's read-ahead padding: the usage reader can
        // then parse the body in place instead of copying it once more.
        r.resp_.body_.reserve(std::min<size_t>(p->content_length, kMaxBodyReserve) + kBodySlack);
      } catch (...) {
        r.fail(Error::no_memory, "out of memory while reading response body");
        return -1;
      }
    }
    // 1 tells llhttp that this response has no body whatever its headers say.
    return bodyless ? 1 : 0;
  }

  static int on_body(llhttp_t* p, const char* at, size_t len) noexcept {
    ResponseParser& r = self(p);
    // Checked before appending, so the body never grows past the limit.
    const size_t max = r.limits_.max_body_bytes;
    if (r.resp_.body_.size() > max || len > max - r.resp_.body_.size()) {
      r.fail_too_large("response body exceeds ", r.limits_.max_body_bytes);
      return HPE_USER;
    }
    try {
      r.resp_.body_.append(at, len);
    } catch (...) {
      r.fail(Error::no_memory, "out of memory while reading response body");
      return HPE_USER;
    }
    return 0;
  }

  static int on_message_complete(llhttp_t* p) noexcept {
    ResponseParser& r = self(p);
    if (r.resp_.status_ >= 100 && r.resp_.status_ < 200) {
      r.interim_done_ = true;
    } else {
      r.message_done_ = true;
      r.keep_alive_ = llhttp_should_keep_alive(p) != 0;
    }
    // Pausing makes llhttp_execute() return with error_pos at the first byte
    // after this message, which is how feed() knows what it consumed.
    return HPE_PAUSED;
  }

  // llhttp keeps a pointer to its settings, so they live for the whole
  // program. Function addresses make this a constant initialization.
  static const llhttp_settings_t kSettings;
};

const llhttp_settings_t ResponseParser::Callbacks::kSettings = {
    .on_message_begin = nullptr,
    .on_url = nullptr,
    .on_status = nullptr,
    .on_method = nullptr,
    .on_version = nullptr,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_chunk_extension_name = nullptr,
    .on_chunk_extension_value = nullptr,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_url_complete = nullptr,
    .on_status_complete = on_status_complete,
    .on_method_complete = nullptr,
    .on_version_complete = nullptr,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value_complete = on_header_value_complete,
    .on_chunk_extension_name_complete = nullptr,
    .on_chunk_extension_value_complete = nullptr,
    .on_chunk_header = nullptr,
    .on_chunk_complete = nullptr,
    .on_reset = nullptr,
};

ResponseParser::ResponseParser(const ResponseLimits& limits) : limits_(limits) { reset(false); }

void ResponseParser::recycle_headers() noexcept { resp_.clear_headers(); }

void ResponseParser::begin_message() noexcept {
  llhttp_init(&parser_, HTTP_RESPONSE, &Callbacks::kSettings);
  parser_.data = this;
  recycle_headers();
  resp_.status_ = 0;
  resp_.headers_complete_ = false;
  status_line_done_ = false;
  in_field_ = false;
  message_done_ = false;
  interim_done_ = false;
}

void ResponseParser::reset(bool head_request) noexcept {
  begin_message();
  head_request_ = head_request;
  state_ = State::need_more;
  error_ = Error::none;
  error_message_.clear();
  resp_.started_ = false;
  keep_alive_ = false;
  header_bytes_ = 0;
  resp_.reset(kKeptBodyCapacity);
}

void ResponseParser::fail(Error error, std::string_view message) noexcept {
  // The first failure is the cause; llhttp's own error that follows a
  // callback refusal must not overwrite it.
  if (state_ == State::error) return;
  state_ = State::error;
  error_ = error;
  keep_alive_ = false;
  try {
    error_message_.assign(message);
  } catch (...) {
    error_message_.clear();
  }
}

void ResponseParser::fail_too_large(std::string_view prefix, size_t limit) noexcept {
  char buf[96];
  char* out = buf;
  const size_t n = std::min(prefix.size(), size_t{48});
  out = std::copy_n(prefix.data(), n, out);
  out = std::to_chars(out, buf + sizeof buf - 8, limit).ptr;
  const std::string_view tail = " bytes";
  out = std::copy(tail.begin(), tail.end(), out);
  fail(Error::too_large, std::string_view(buf, static_cast<size_t>(out - buf)));
}

void ResponseParser::fail_from_llhttp(llhttp_errno_t err) noexcept {
  if (state_ == State::error) return;  // a callback already said why
  if (err == HPE_PAUSED_UPGRADE) {
    fail(Error::protocol, "unexpected protocol upgrade");
    return;
  }
  if (!status_line_done_) {
    fail(Error::protocol, "invalid HTTP status line");
    return;
  }
  const char* reason = llhttp_get_error_reason(&parser_);
  char buf[160];
  const std::string_view prefix = "invalid HTTP response: ";
  char* out = std::copy(prefix.begin(), prefix.end(), buf);
  std::string_view why = reason ? std::string_view(reason) : std::string_view(llhttp_errno_name(err));
  why = why.substr(0, sizeof buf - prefix.size());
  out = std::copy(why.begin(), why.end(), out);
  fail(Error::protocol, std::string_view(buf, static_cast<size_t>(out - buf)));
}

ResponseParser::State ResponseParser::feed(const char* data, size_t len, size_t* consumed) noexcept {
  size_t pos = 0;
  if (state_ == State::need_more && len > 0) {
    parser_.data = this;
    resp_.started_ = true;
    while (pos < len) {
      size_t slice = len - pos;
      const bool headers_before = resp_.headers_complete_;
      if (!headers_before) {
        // Feeding no more than the remaining budget makes the limit exact:
        // if the headers did not end within it, they are too large.
        const size_t max = limits_.max_header_bytes;
        const size_t budget = header_bytes_ >= max ? 0 : max - header_bytes_;
        if (budget == 0) {
          fail_too_large("response headers exceed ", limits_.max_header_bytes);
          break;
        }
        slice = std::min(slice, budget);
      }
      const char* start = data + pos;
      const llhttp_errno_t err = llhttp_execute(&parser_, start, slice);
      size_t used = slice;
      if (err == HPE_PAUSED) {
        used = static_cast<size_t>(llhttp_get_error_pos(&parser_) - start);
      } else if (err != HPE_OK) {
        fail_from_llhttp(err);
        break;
      }
      if (!headers_before && (!resp_.headers_complete_ || interim_done_)) header_bytes_ += used;
      pos += used;
      if (message_done_) {
        state_ = State::complete;
        break;
      }
      if (interim_done_) {
        // 1xx: forget it and parse the real response from the next byte.
        // Its header bytes stay counted, bounding a flood of interims.
        begin_message();
      }
    }
  }
  if (consumed) *consumed = pos;
  return state_;
}

ResponseParser::State ResponseParser::finish() noexcept {
  if (state_ != State::need_more) return state_;
  parser_.data = this;
  if (!resp_.started_) {
    // Kept distinct so the pool can tell a stale keep-alive connection.
    fail(Error::protocol, "connection closed before response");
    return state_;
  }
  // For a close-delimited body llhttp calls on_message_complete from here.
  (void)llhttp_finish(&parser_);
  if (message_done_) {
    state_ = State::complete;
    keep_alive_ = false;
    return state_;
  }
  fail(Error::protocol, "connection closed before end of response");
  return state_;
}


}  // namespace barrage::http
