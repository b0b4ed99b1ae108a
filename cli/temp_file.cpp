// mkstemps-based temporary files, removed by the destructor.
#include "temp_file.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

namespace barrage::cli {

TempFile TempFile::create(const std::string& prefix, const std::string& suffix,
                          const std::string& data, std::string* err) {
  const char* dir = std::getenv("TMPDIR");
  std::string path = (dir != nullptr && dir[0] != '\0') ? dir : "/tmp";
  path += "/" + prefix + "XXXXXX" + suffix;
  std::vector<char> buf(path.begin(), path.end());
  buf.push_back('\0');
  int fd = mkstemps(buf.data(), static_cast<int>(suffix.size()));
  if (fd < 0) {
    *err = "cannot create a temporary file like " + path + ": " + std::strerror(errno);
    return {};
  }
  TempFile f;
  f.path_ = buf.data();
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *err = "cannot write " + f.path_ + ": " + std::strerror(errno);
      close(fd);
      return {};  // f's destructor removes the partial file
    }
    done += static_cast<size_t>(n);
  }
  if (close(fd) != 0) {
    *err = "cannot write " + f.path_ + ": " + std::strerror(errno);
    return {};
  }
  return f;
}

TempFile::TempFile(TempFile&& other) noexcept : path_(std::exchange(other.path_, {})) {}

TempFile& TempFile::operator=(TempFile&& other) noexcept {
  if (this != &other) {
    if (!path_.empty()) unlink(path_.c_str());
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

TempFile::~TempFile() {
  if (!path_.empty()) unlink(path_.c_str());
}

}  // namespace barrage::cli
