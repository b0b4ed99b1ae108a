// LineReader: chunked read(2) into one buffer that moves unread bytes to the
// front before refilling and doubles only for a line longer than itself.
#include "batch/line_reader.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace barrage {
namespace {

constexpr size_t kChunk = size_t(1) << 20;

}  // namespace

LineReader::~LineReader() {
  if (fd_ >= 0) ::close(fd_);
}

std::string LineReader::open(const std::string& path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) return "cannot open " + path + ": " + std::strerror(errno);
  cap_ = kChunk;
  // Zeroed so that the padding simdjson may read is never uninitialised.
  buf_.reset(new char[cap_ + kLinePadding]());
  return "";
}

int LineReader::fill() {
  if (begin_ > 0) {
    std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
    base_ += begin_;
    end_ -= begin_;
    scanned_ -= begin_;
    begin_ = 0;
  }
  if (end_ == cap_) {  // one line fills the whole buffer
    size_t cap = cap_ * 2;
    std::unique_ptr<char[]> bigger(new char[cap + kLinePadding]());
    std::memcpy(bigger.get(), buf_.get(), end_);
    buf_ = std::move(bigger);
    cap_ = cap;
  }
  for (;;) {
    ssize_t n = ::read(fd_, buf_.get() + end_, cap_ - end_);
    if (n > 0) {
      end_ += size_t(n);
      return 1;
    }
    if (n == 0) {
      eof_ = true;
      return 0;
    }
    if (errno != EINTR) return -errno;
  }
}

int LineReader::next(Line* out) {
  if (fd_ < 0) return -EBADF;
  for (;;) {
    char* start = buf_.get() + begin_;
    auto* nl = static_cast<char*>(std::memchr(buf_.get() + scanned_, '\n', end_ - scanned_));
    size_t stop = nl ? size_t(nl - buf_.get()) : end_;
    if (nl || (eof_ && begin_ < end_)) {
      size_t len = stop - begin_;
      if (len > 0 && start[len - 1] == '\r') --len;
      out->text = std::string_view(start, len);
      out->offset = base_ + begin_;
      out->number = ++number_;
      out->terminated = nl != nullptr;
      begin_ = scanned_ = nl ? stop + 1 : end_;
      if (out->number == 1 && out->text.substr(0, 3) == "\xEF\xBB\xBF") out->text.remove_prefix(3);  // UTF-8 BOM
      return 1;
    }
    if (eof_) return 0;
    scanned_ = end_;
    int rc = fill();
    if (rc < 0) return rc;
  }
}

}  // namespace barrage
