// The mock server's own HTTP/1.1 request parser. Deliberately separate from
// the engine's llhttp-based code: a peer written independently is what lets
// the two catch each other's framing bugs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace barrage::mock {

inline constexpr size_t kMaxHeaderBytes = 64 * 1024;
inline constexpr size_t kMaxBodyBytes = 16 * 1024 * 1024;

// One parsed request. Every view points into the parser's input, except
// body for chunked requests, which points into the caller's decode buffer.
struct HttpRequest {
  std::string_view method;
  std::string_view target;  // origin-form path with query, as sent
  int minor_version = 1;    // HTTP/1.<minor>
  std::string_view body;
  bool keep_alive = true;
  bool expect_continue = false;
  bool chunked = false;

  // x-mock-* fault controls, raw header values ("" when absent).
  std::string_view mock_status;
  std::string_view mock_fault;
  std::string_view mock_latency_ms;
  std::string_view mock_retry_after;
  std::string_view mock_retry_after_ms;
  std::string_view mock_ratelimit_reset_requests;  // sent with x-ratelimit-remaining-requests: 0
  std::string_view mock_drip_ms;
  std::string_view mock_huge_bytes;
  std::string_view mock_fail_times;  // with mock_fail_key: fail only the first N
  std::string_view mock_fail_key;
  // x-mock-stream-* pacing controls for "stream": true answers.
  std::string_view mock_stream_tokens;
  std::string_view mock_stream_interval_ms;
  std::string_view mock_first_token_ms;
  std::string_view mock_stream_stall_after;
  std::string_view mock_stream_reset_after;

  bool has_mock_controls() const {
    return !mock_status.empty() || !mock_fault.empty() || !mock_latency_ms.empty() ||
           !mock_drip_ms.empty() || !mock_huge_bytes.empty() || !mock_fail_times.empty() || has_stream_controls();
  }
  bool has_stream_controls() const {
    return !mock_stream_tokens.empty() || !mock_stream_interval_ms.empty() ||
           !mock_first_token_ms.empty() || !mock_stream_stall_after.empty() ||
           !mock_stream_reset_after.empty();
  }
  std::string_view path() const { return target.substr(0, target.find('?')); }
};

enum class ParseStatus { kComplete, kIncomplete, kError };

struct ParseResult {
  ParseStatus status = ParseStatus::kIncomplete;
  size_t consumed = 0;        // bytes of input the request occupies (kComplete)
  int error_status = 0;       // 400, 413, 501 or 505 (kError)
  const char* error = "";     // short reason for the error body (kError)
  bool headers_done = false;  // the header block is complete (for 100-continue)
};

// Parses the request at the start of `in` without consuming anything, so a
// caller can retry after more bytes arrive (it costs one header scan; chunk
// data are only copied once the whole body is present). `chunk_buf` receives
// the decoded body of a chunked request and must outlive the use of req.
// Limits: header block kMaxHeaderBytes (else 400), body kMaxBodyBytes (else
// 413). Content-Length together with Transfer-Encoding is rejected (400), as
// is any transfer coding other than chunked (501).
ParseResult parse_request(std::string_view in, HttpRequest* req, std::string* chunk_buf);

// Parses a non-negative decimal integer that fills all of `s`; false on
// empty input, stray characters or overflow.
bool parse_u64(std::string_view s, uint64_t* out);

// ASCII case-insensitive equality, for header names and tokens.
bool iequals(std::string_view a, std::string_view b);

}  // namespace barrage::mock
