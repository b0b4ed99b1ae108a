// OutputFile: plain write(2) on an O_APPEND descriptor, no user-space buffer,
// so what was written survives the process dying a moment later.
#include "batch/output_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace barrage {

OutputFile::~OutputFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::string OutputFile::open(const std::string& path) {
  // O_RDWR rather than O_WRONLY so the last byte can be checked.
  fd_ = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) return "cannot open " + path + " for appending: " + std::strerror(errno);
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return "cannot stat " + path + ": " + std::strerror(errno);
  if (S_ISREG(st.st_mode) && st.st_size > 0) {
    char last = 0;
    if (::pread(fd_, &last, 1, st.st_size - 1) != 1) return "cannot read " + path + ": " + std::strerror(errno);
    if (last != '\n') {
      int rc = write_line("\n");
      if (rc != 0) return "cannot write " + path + ": " + std::strerror(-rc);
    }
  }
  return "";
}

int OutputFile::write_line(std::string_view line) {
  while (!line.empty()) {
    ssize_t n = ::write(fd_, line.data(), line.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    line.remove_prefix(size_t(n));
  }
  return 0;
}

int truncate_file(const std::string& path, uint64_t size) {
  return ::truncate(path.c_str(), off_t(size)) == 0 ? 0 : -errno;
}

}  // namespace barrage
