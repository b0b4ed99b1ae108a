// HTTP/1.1 request framing for the mock server: request line, headers,
// Content-Length and chunked bodies, strict enough to reject smuggling-style
// ambiguity (see http_request.hpp).
#include "http_request.hpp"

namespace barrage::mock {
namespace {

constexpr size_t kMaxChunkLine = 1024;

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

ParseResult fail(int status, const char* why) {
  ParseResult r;
  r.status = ParseStatus::kError;
  r.error_status = status;
  r.error = why;
  return r;
}

// Walks a chunked body starting at `pos`. With `copy` null it only checks
// framing and completeness; with `copy` set it appends the chunk data.
// Returns kComplete with *end just past the trailer section.
ParseResult scan_chunks(std::string_view in, size_t pos, std::string* copy, size_t* end) {
  uint64_t total = 0;
  for (;;) {
    size_t eol = in.find("\r\n", pos);
    if (eol == std::string_view::npos) {
      if (in.size() - pos > kMaxChunkLine) return fail(400, "chunk size line too long");
      return ParseResult{};
    }
    if (eol - pos > kMaxChunkLine) return fail(400, "chunk size line too long");
    std::string_view line = in.substr(pos, eol - pos);
    uint64_t size = 0;
    size_t i = 0;
    for (; i < line.size() && hex_value(line[i]) >= 0; ++i) {
      if (size > (kMaxBodyBytes << 4)) return fail(413, "request body too large");
      size = size * 16 + static_cast<uint64_t>(hex_value(line[i]));
    }
    if (i == 0) return fail(400, "bad chunk size");
    std::string_view rest = trim(line.substr(i));
    if (!rest.empty() && rest.front() != ';') return fail(400, "bad chunk extension");
    pos = eol + 2;
    if (size == 0) {
      // Trailer section: header lines we ignore, ended by an empty line.
      size_t trailer_start = pos;
      for (;;) {
        size_t t = in.find("\r\n", pos);
        if (t == std::string_view::npos) {
          if (in.size() - trailer_start > kMaxHeaderBytes) return fail(400, "trailers too large");
          return ParseResult{};
        }
        if (t - trailer_start > kMaxHeaderBytes) return fail(400, "trailers too large");
        bool empty = (t == pos);
        pos = t + 2;
        if (empty) break;
      }
      *end = pos;
      ParseResult r;
      r.status = ParseStatus::kComplete;
      return r;
    }
    total += size;
    if (total > kMaxBodyBytes) return fail(413, "request body too large");
    if (in.size() - pos < size + 2) return ParseResult{};
    if (in[pos + size] != '\r' || in[pos + size + 1] != '\n') {
      return fail(400, "chunk data not followed by CRLF");
    }
    if (copy != nullptr) copy->append(in.data() + pos, size);
    pos += size + 2;
  }
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool parse_u64(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

ParseResult parse_request(std::string_view in, HttpRequest* req, std::string* chunk_buf) {
  *req = HttpRequest{};
  // RFC 9112 section 2.2: a server should ignore empty lines before the
  // request line (some clients send a stray CRLF after a POST body).
  size_t start = 0;
  while (start < in.size() && (in[start] == '\r' || in[start] == '\n') && start < 8) ++start;

  size_t head_end = in.find("\r\n\r\n", start);
  if (head_end == std::string_view::npos) {
    if (in.size() - start > kMaxHeaderBytes) return fail(400, "request header block too large");
    return ParseResult{};
  }
  if (head_end + 4 - start > kMaxHeaderBytes) return fail(400, "request header block too large");
  std::string_view head = in.substr(start, head_end - start);

  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return fail(400, "malformed request line");
  req->method = line.substr(0, sp1);
  req->target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!is_token(req->method) || req->target.empty()) return fail(400, "malformed request line");
  for (char c : req->target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return fail(400, "malformed request target");
    }
  }
  if (version == "HTTP/1.1") {
    req->minor_version = 1;
  } else if (version == "HTTP/1.0") {
    req->minor_version = 0;
  } else if (version.size() == 8 && version.substr(0, 5) == "HTTP/") {
    return fail(505, "HTTP version not supported");
  } else {
    return fail(400, "malformed request line");
  }
  req->keep_alive = req->minor_version == 1;

  bool have_length = false;
  bool have_te = false;
  bool conn_close = false;
  bool conn_keep_alive = false;
  uint64_t content_length = 0;
  size_t pos = eol == std::string_view::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    size_t next = head.find("\r\n", pos);
    if (next == std::string_view::npos) next = head.size();
    std::string_view h = head.substr(pos, next - pos);
    pos = next + 2;
    if (h.empty()) continue;
    if (h.front() == ' ' || h.front() == '\t') return fail(400, "obsolete header line folding");
    size_t colon = h.find(':');
    if (colon == std::string_view::npos) return fail(400, "malformed header line");
    std::string_view name = h.substr(0, colon);
    if (!is_token(name)) return fail(400, "malformed header name");
    std::string_view value = trim(h.substr(colon + 1));
    for (char c : value) {
      if (c == '\r' || c == '\n' || c == '\0') return fail(400, "bad character in header value");
    }

    if (starts_with_ci(name, "x-mock-")) {
      std::string_view k = name.substr(7);
      if (iequals(k, "status")) req->mock_status = value;
      else if (iequals(k, "fault")) req->mock_fault = value;
      else if (iequals(k, "latency-ms")) req->mock_latency_ms = value;
      else if (iequals(k, "retry-after")) req->mock_retry_after = value;
      else if (iequals(k, "retry-after-ms")) req->mock_retry_after_ms = value;
      else if (iequals(k, "ratelimit-reset-requests")) req->mock_ratelimit_reset_requests = value;
      else if (iequals(k, "drip-ms")) req->mock_drip_ms = value;
      else if (iequals(k, "huge-bytes")) req->mock_huge_bytes = value;
      else if (iequals(k, "fail-times")) req->mock_fail_times = value;
      else if (iequals(k, "fail-key")) req->mock_fail_key = value;
      else if (iequals(k, "stream-tokens")) req->mock_stream_tokens = value;
      else if (iequals(k, "stream-interval-ms")) req->mock_stream_interval_ms = value;
      else if (iequals(k, "first-token-ms")) req->mock_first_token_ms = value;
      else if (iequals(k, "stream-stall-after")) req->mock_stream_stall_after = value;
      else if (iequals(k, "stream-reset-after")) req->mock_stream_reset_after = value;
    } else if (iequals(name, "content-length")) {
      uint64_t v = 0;
      if (!parse_u64(value, &v)) return fail(400, "bad Content-Length");
      if (have_length && v != content_length) return fail(400, "conflicting Content-Length");
      have_length = true;
      content_length = v;
    } else if (iequals(name, "transfer-encoding")) {
      have_te = true;
      std::string_view last = value;
      size_t comma = value.rfind(',');
      if (comma != std::string_view::npos) last = trim(value.substr(comma + 1));
      if (!iequals(last, "chunked")) return fail(501, "unsupported transfer coding");
      req->chunked = true;
    } else if (iequals(name, "connection")) {
      std::string_view rest = value;
      while (!rest.empty()) {
        size_t comma = rest.find(',');
        std::string_view tok = trim(rest.substr(0, comma));
        if (iequals(tok, "close")) conn_close = true;
        if (iequals(tok, "keep-alive")) conn_keep_alive = true;
        rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      }
    } else if (iequals(name, "expect")) {
      if (iequals(value, "100-continue")) req->expect_continue = true;
    }
  }
  // Both framings at once is the classic request-smuggling ambiguity; refuse
  // rather than pick one (RFC 9112 section 6.3 allows either).
  if (have_te && have_length) return fail(400, "both Content-Length and Transfer-Encoding");
  if (conn_keep_alive) req->keep_alive = true;
  if (conn_close) req->keep_alive = false;

  size_t body_start = head_end + 4;
  if (!req->chunked) {
    if (content_length > kMaxBodyBytes) return fail(413, "request body too large");
    ParseResult r;
    r.headers_done = true;
    if (in.size() - body_start < content_length) return r;
    req->body = in.substr(body_start, content_length);
    r.status = ParseStatus::kComplete;
    r.consumed = body_start + content_length;
    return r;
  }

  size_t end = 0;
  ParseResult scan = scan_chunks(in, body_start, nullptr, &end);
  if (scan.status != ParseStatus::kComplete) {
    scan.headers_done = scan.status == ParseStatus::kIncomplete;
    return scan;
  }
  chunk_buf->clear();
  scan_chunks(in, body_start, chunk_buf, &end);
  req->body = *chunk_buf;
  ParseResult r;
  r.status = ParseStatus::kComplete;
  r.headers_done = true;
  r.consumed = end;
  return r;
}

}  // namespace barrage::mock
