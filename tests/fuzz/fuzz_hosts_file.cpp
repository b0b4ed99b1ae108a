// Hosts file parser: the table loaded from any file content equals a plain
// reference reading of the same lines (address, then lower-cased names; '#'
// comments; unparsable addresses skipped; an address listed once per name),
// each name's addresses in RFC 8305 order (the first address's family, then
// alternating, file order within a family), and unknown names are not found.
// DNS answers have their own target, fuzz_dns_answer.
#include <arpa/inet.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "net/hosts_file.hpp"

using barrage::HostsFile;
using barrage::SockAddr;

namespace {

struct Addr {
  int family;
  unsigned char bytes[16];
  bool operator==(const Addr& o) const {
    return family == o.family && std::memcmp(bytes, o.bytes, family == AF_INET ? 4 : 16) == 0;
  }
};

bool parse(const std::string& w, Addr* a) {
  std::memset(a, 0, sizeof *a);
  if (inet_pton(AF_INET, w.c_str(), a->bytes) == 1) return a->family = AF_INET, true;
  if (inet_pton(AF_INET6, w.c_str(), a->bytes) == 1) return a->family = AF_INET6, true;
  return false;
}

Addr from_sockaddr(const SockAddr& s) {
  Addr a{};
  a.family = s.get()->sa_family;
  if (a.family == AF_INET) {
    FUZZ_CHECK(s.len == sizeof(sockaddr_in));
    std::memcpy(a.bytes, &reinterpret_cast<const sockaddr_in*>(s.get())->sin_addr, 4);
  } else {
    FUZZ_CHECK(a.family == AF_INET6 && s.len == sizeof(sockaddr_in6));
    std::memcpy(a.bytes, &reinterpret_cast<const sockaddr_in6*>(s.get())->sin6_addr, 16);
  }
  return a;
}

// The documented order: first family first, alternating, stable within a family.
std::vector<Addr> interleaved(const std::vector<Addr>& in) {
  std::vector<Addr> first, other, out;
  for (const Addr& a : in) (a.family == in[0].family ? first : other).push_back(a);
  for (size_t i = 0; i < first.size() || i < other.size(); ++i) {
    if (i < first.size()) out.push_back(first[i]);
    if (i < other.size()) out.push_back(other[i]);
  }
  return out;
}

std::map<std::string, std::vector<Addr>> reference(std::string_view content) {
  std::map<std::string, std::vector<Addr>> names;
  size_t pos = 0;
  while (pos < content.size()) {
    size_t eol = content.find('\n', pos);
    if (eol == std::string_view::npos) eol = content.size() - 1;
    // getline() then a C string: a NUL ends the line's text.
    std::string line(content.substr(pos, eol + 1 - pos));
    pos = eol + 1;
    line.resize(std::strlen(line.c_str()));
    if (size_t h = line.find('#'); h != std::string::npos) line.resize(h);
    std::istringstream words(line);
    std::string w;
    Addr a;
    if (!(words >> w) || !parse(w, &a)) continue;
    while (words >> w) {
      for (char& c : w) c = char(std::tolower(static_cast<unsigned char>(c)));
      auto& list = names[w];
      bool seen = false;
      for (const Addr& x : list) seen = seen || x == a;
      if (!seen) list.push_back(a);
    }
  }
  return names;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int fd = memfd_create("hosts", 0);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  FUZZ_CHECK(fd >= 0);
  FUZZ_CHECK(ftruncate(fd, 0) == 0);
  FUZZ_CHECK(pwrite(fd, data, size, 0) == ssize_t(size));

  HostsFile hosts;
  FUZZ_CHECK(hosts.load(path).empty());
  const std::string_view content(reinterpret_cast<const char*>(data), size);
  const auto expected = reference(content);
  FUZZ_CHECK(hosts.size() == expected.size());
  for (const auto& [name, addrs] : expected) {
    const std::vector<SockAddr>* got = hosts.find(name);
    FUZZ_CHECK(got != nullptr);
    std::vector<Addr> got_addrs;
    for (const SockAddr& s : *got) got_addrs.push_back(from_sockaddr(s));
    FUZZ_CHECK(got_addrs == interleaved(addrs));
  }
  // Names the file does not list are not found, upper-case spellings included.
  for (const auto& [name, addrs] : expected) {
    std::string upper = name;
    bool changed = false;
    for (char& c : upper) {
      const char u = char(std::toupper(static_cast<unsigned char>(c)));
      changed = changed || u != c;
      c = u;
    }
    if (changed && !expected.count(upper)) FUZZ_CHECK(hosts.find(upper) == nullptr);
    if (!expected.count(name + "x")) FUZZ_CHECK(hosts.find(name + "x") == nullptr);
  }
  return 0;
}
