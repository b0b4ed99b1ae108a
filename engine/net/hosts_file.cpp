// Hosts-file parsing: "address name [alias...]" per line, '#' to the end of
// a line is a comment. Lines whose address does not parse (a scoped IPv6
// "fe80::1%eth0", say) are skipped, as glibc skips what it cannot use.
#include "net/hosts_file.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "net/address_order.hpp"

namespace barrage {
namespace {

bool parse_address(const std::string& text, SockAddr& out) {
  out = SockAddr{};
  auto* sin = reinterpret_cast<sockaddr_in*>(&out.storage);
  if (inet_pton(AF_INET, text.c_str(), &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    out.len = sizeof(sockaddr_in);
    return true;
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (inet_pton(AF_INET6, text.c_str(), &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    out.len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

bool same_address(const SockAddr& a, const SockAddr& b) {
  return a.len == b.len && std::memcmp(&a.storage, &b.storage, a.len) == 0;
}

}  // namespace

std::string HostsFile::load(const std::string& path) {
  names_.clear();
  FILE* f = std::fopen(path.c_str(), "re");
  if (!f) {
    if (errno == ENOENT) return "";
    return "cannot read hosts file '" + path + "': " + std::strerror(errno);
  }
  char* line = nullptr;
  size_t cap = 0;
  while (::getline(&line, &cap, f) >= 0) {
    std::string text(line);
    if (size_t hash = text.find('#'); hash != std::string::npos) text.resize(hash);
    std::istringstream words(text);
    std::string word;
    SockAddr addr;
    if (!(words >> word) || !parse_address(word, addr)) continue;
    while (words >> word) {
      std::transform(word.begin(), word.end(), word.begin(),
                     [](unsigned char c) { return char(std::tolower(c)); });
      std::vector<SockAddr>& list = names_[word];
      bool seen = std::any_of(list.begin(), list.end(),
                              [&](const SockAddr& s) { return same_address(s, addr); });
      if (!seen) list.push_back(addr);
    }
  }
  std::free(line);
  std::fclose(f);
  for (auto& [name, list] : names_) interleave_families(list);
  return "";
}

const std::vector<SockAddr>* HostsFile::find(const std::string& lower_name) const noexcept {
  auto it = names_.find(lower_name);
  return it == names_.end() ? nullptr : &it->second;
}

}  // namespace barrage
