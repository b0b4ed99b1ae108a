// The hosts file (/etc/hosts), read once when the resolver is created and
// answered from memory afterwards. c-ares 1.18 would reopen and parse the
// file on every lookup, a blocking read on the loop thread; reading it once
// matches how resolv.conf is treated (changes need a new engine).
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "net/resolver.hpp"

namespace barrage {

class HostsFile {
 public:
  // Replaces the table with the file's entries. A missing file is an empty
  // table and not an error; otherwise returns "" or why it could not be read.
  std::string load(const std::string& path);
  // Addresses for a lower-case name, port 0, families interleaved as
  // interleave_families() orders them; nullptr when the file does not name it.
  const std::vector<SockAddr>* find(const std::string& lower_name) const noexcept;
  size_t size() const noexcept { return names_.size(); }

 private:
  std::unordered_map<std::string, std::vector<SockAddr>> names_;
};

}  // namespace barrage
