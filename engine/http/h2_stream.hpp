// Internal to H2Session's two files (h2_session.cpp, h2_callbacks.cpp): the
// per-stream state and the helpers both use. Not for other code.
#pragma once

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstring>
#include <initializer_list>
#include <new>

#include "barrage.h"
#include "http/ascii.hpp"
#include "http/h2_session.hpp"

namespace barrage::http::h2_detail {

// Recycled streams keep at most this much body capacity, and at most this
// many are kept: a burst of large answers must not pin memory for good.
inline constexpr size_t kPooledBodyCapacity = 64 * 1024;
inline constexpr size_t kMaxPooledStreams = 64;
// A Content-Length is a hint for one reservation, never trusted for more.
inline constexpr size_t kMaxBodyReserve = 1u << 20;

// Error texts are built where no exception may escape: on allocation
// failure the message is simply lost, the status still gets through.
inline std::string text(std::initializer_list<std::string_view> parts) noexcept {
  std::string s;
  try {
    size_t n = 0;
    for (std::string_view p : parts) n += p.size();
    s.reserve(n);
    for (std::string_view p : parts) s.append(p);
  } catch (const std::bad_alloc&) {
    s.clear();
  }
  return s;
}

struct Num {
  explicit Num(uint64_t v) noexcept {
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    len = size_t(r.ptr - buf);
  }
  std::string_view sv() const noexcept { return {buf, len}; }
  char buf[24];
  size_t len = 0;
};

inline std::string_view h2_code(uint32_t code) noexcept { return nghttp2_http2_strerror(code); }
inline std::string_view lib_text(int code) noexcept { return nghttp2_strerror(code); }

}  // namespace barrage::http::h2_detail

namespace barrage::http {

using namespace h2_detail;

// ---- per-stream state ---------------------------------------------------

struct H2Session::Stream {
  // Which HEADERS block is being received: the header callback needs it to
  // keep only the final response's fields.
  enum class Block : uint8_t { none, interim, final_response, trailers };

  void reset() noexcept {
    user = nullptr;
    id = 0;
    keep_body = true;
    reported = false;
    headers_sent = false;
    body_done = false;
    final_seen = false;
    peer_reset = false;
    block = Block::none;
    request_body = {};
    request_sent = 0;
    header_bytes = 0;
    body_bytes = 0;
    lib_error = 0;
    response.reset(kPooledBodyCapacity);
  }

  ListHook<Stream> hook;
  void* user = nullptr;
  int32_t id = 0;
  bool keep_body = true;
  bool reported = false;      // its one event was delivered, or it was cancelled
  bool headers_sent = false;  // the request HEADERS left nghttp2 (the server may have seen it)
  bool body_done = false;     // the whole request body was handed to nghttp2
  bool final_seen = false;    // a non-1xx :status arrived
  bool peer_reset = false;    // the server sent RST_STREAM
  Block block = Block::none;
  std::string_view request_body;  // points into the caller's wire buffer
  size_t request_sent = 0;
  size_t header_bytes = 0;
  size_t body_bytes = 0;
  int lib_error = 0;  // why nghttp2 reset the stream itself, when it said so
  Response response;
};

}  // namespace barrage::http
