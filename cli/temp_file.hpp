// A file under $TMPDIR that lives exactly as long as its owner, for handing
// in-memory PEM data to libbarrage, which only takes a CA *file*.
#pragma once

#include <string>

namespace barrage::cli {

class TempFile {
 public:
  // Creates a private (0600) file named <prefix>XXXXXX<suffix> holding data.
  // Returns an empty TempFile (path() == "") on failure with *err set.
  static TempFile create(const std::string& prefix, const std::string& suffix,
                         const std::string& data, std::string* err);

  TempFile() = default;
  TempFile(TempFile&& other) noexcept;
  TempFile& operator=(TempFile&& other) noexcept;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile();  // removes the file

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace barrage::cli
