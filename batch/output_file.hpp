// The output file, which is also the checkpoint: opened for appending, each
// line handed to the kernel in one write(2) as soon as it is known, so a
// crash leaves every earlier line whole and at most the last one torn.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace barrage {

class OutputFile {
 public:
  OutputFile() = default;
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  // Opens path with O_APPEND, creating it (0644) if missing. A file whose
  // last byte is not "\n" (torn by an earlier run that was not resumed) gets
  // one first, so the next line does not glue onto the torn one.
  // "" on success, else why.
  std::string open(const std::string& path);
  // Appends one whole line (with its "\n"). 0 or -errno. Only a short write
  // (disk full, a signal) takes a second call for the rest.
  int write_line(std::string_view line);

 private:
  int fd_ = -1;
};

// Cuts the file at `size` bytes (the end of its last complete line). 0 or -errno.
int truncate_file(const std::string& path, uint64_t size);

}  // namespace barrage
