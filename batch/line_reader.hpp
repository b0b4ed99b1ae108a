// Streams a file line by line through one growing buffer, so a 200,000-line
// batch file is never in memory at once. Every line handed out has
// kLinePadding readable bytes behind it: simdjson parses it in place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace barrage {

// simdjson::SIMDJSON_PADDING, restated so this header needs no simdjson.
inline constexpr size_t kLinePadding = 64;

struct Line {
  std::string_view text;  // without "\n" (and a "\r" before it)
  uint64_t offset = 0;    // of the line's first byte in the file
  uint64_t number = 0;    // 1-based
  bool terminated = false;  // ended by "\n" (false only for the last line)
};

class LineReader {
 public:
  LineReader() = default;
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // "" on success, else why the file cannot be read.
  std::string open(const std::string& path);
  // 1 and *out (valid until the next call), 0 at the end, or -errno.
  int next(Line* out);

 private:
  int fill();

  int fd_ = -1;
  std::unique_ptr<char[]> buf_;
  size_t cap_ = 0;       // usable bytes; kLinePadding more are allocated
  size_t begin_ = 0;     // first byte not yet handed out
  size_t scanned_ = 0;   // no "\n" in [begin_, scanned_)
  size_t end_ = 0;       // bytes read into buf_
  uint64_t base_ = 0;    // file offset of buf_[0]
  uint64_t number_ = 0;  // of the last line handed out
  bool eof_ = false;
};

}  // namespace barrage
