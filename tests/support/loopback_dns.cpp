// The loopback DNS test server: parses the header and question of each
// query (ignoring any EDNS OPT record) and writes an authoritative answer
// with the records of the table, over UDP or length-prefixed over TCP.
#include "loopback_dns.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

namespace barrage::testing {
namespace {

constexpr uint16_t kTypeA = 1;
constexpr uint16_t kTypeAAAA = 28;
constexpr uint16_t kClassIn = 1;

std::string normalise(std::string name) {
  if (!name.empty() && name.back() == '.') name.pop_back();
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return name;
}

uint16_t get16(const char* p) {
  return uint16_t((uint8_t(p[0]) << 8) | uint8_t(p[1]));
}
void put16(std::string& out, uint16_t v) {
  out.push_back(char(v >> 8));
  out.push_back(char(v & 0xff));
}
void put32(std::string& out, uint32_t v) {
  put16(out, uint16_t(v >> 16));
  put16(out, uint16_t(v & 0xffff));
}

}  // namespace

LoopbackDns::LoopbackDns() {
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) {
    ADD_FAILURE() << "loopback DNS server: eventfd: " << std::strerror(errno);
    return;
  }
  // UDP takes a free port; TCP must get the same number, which some other
  // socket may hold: then start over with another.
  for (int attempt = 0; attempt < 100 && tcp_fd_ < 0; ++attempt) {
    if (fd_ >= 0) ::close(fd_);
    // Blocking, so that a burst of answers waits for send-buffer room
    // instead of being dropped with EAGAIN; receives use MSG_DONTWAIT.
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ADD_FAILURE() << "loopback DNS server: " << std::strerror(errno);
      return;
    }
    port_ = ntohs(a.sin_port);
    int t = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    ::setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(t, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(t, 64) == 0) {
      tcp_fd_ = t;
      break;
    }
    ::close(t);
  }
  if (tcp_fd_ < 0) {
    ADD_FAILURE() << "loopback DNS server: no port free for both UDP and TCP";
    return;
  }
  // A resolver sends a burst of queries at once (two per name); the default
  // receive queue would drop part of a few hundred.
  int rcvbuf = 4 << 20;
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  thread_ = std::thread([this] { run(); });
}

LoopbackDns::~LoopbackDns() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(stop_fd_, &one, sizeof one);
    thread_.join();
  }
  for (TcpConn& c : conns_)
    if (c.fd >= 0) ::close(c.fd);
  if (fd_ >= 0) ::close(fd_);
  if (tcp_fd_ >= 0) ::close(tcp_fd_);
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

void LoopbackDns::set(const std::string& name, const std::vector<std::string>& addrs, uint32_t ttl_s) {
  Entry e;
  e.ttl_s = ttl_s;
  for (const std::string& s : addrs) {
    in_addr a4;
    in6_addr a6;
    if (inet_pton(AF_INET, s.c_str(), &a4) == 1)
      e.v4.push_back(a4);
    else if (inet_pton(AF_INET6, s.c_str(), &a6) == 1)
      e.v6.push_back(a6);
    else
      ADD_FAILURE() << "loopback DNS server: '" << s << "' is not an IP address";
  }
  std::lock_guard<std::mutex> lk(mu_);
  names_[normalise(name)] = std::move(e);
}

void LoopbackDns::set_truncate(bool truncate) {
  std::lock_guard<std::mutex> lk(mu_);
  truncate_ = truncate;
}

int LoopbackDns::tcp_queries() const {
  std::lock_guard<std::mutex> lk(mu_);
  return tcp_count_;
}

void LoopbackDns::remove(const std::string& name) {
  std::lock_guard<std::mutex> lk(mu_);
  names_.erase(normalise(name));
}

void LoopbackDns::set_drop(bool drop) {
  std::lock_guard<std::mutex> lk(mu_);
  drop_ = drop;
}

void LoopbackDns::set_delay(uint16_t qtype, std::chrono::milliseconds delay) {
  std::lock_guard<std::mutex> lk(mu_);
  delays_[qtype] = delay;
}

int LoopbackDns::queries(const std::string& name) const {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = counts_.find(normalise(name));
  return it == counts_.end() ? 0 : it->second;
}

int LoopbackDns::total_queries() const {
  std::lock_guard<std::mutex> lk(mu_);
  int n = 0;
  for (const auto& [name, count] : counts_) n += count;
  return n;
}

void LoopbackDns::run() {
  char buf[1500];
  std::vector<pollfd> fds;
  for (;;) {
    auto now = std::chrono::steady_clock::now();
    // Send what is due; sleep until the next held-back answer at most.
    int timeout = -1;
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->due <= now) {
        ::sendto(fd_, it->packet.data(), it->packet.size(), 0, reinterpret_cast<sockaddr*>(&it->to),
                 sizeof it->to);
        it = pending_.erase(it);
        continue;
      }
      auto ms = std::chrono::ceil<std::chrono::milliseconds>(it->due - now).count();
      timeout = timeout < 0 ? int(ms) : std::min(timeout, int(ms));
      ++it;
    }
    fds.assign({{stop_fd_, POLLIN, 0}, {fd_, POLLIN, 0}, {tcp_fd_, POLLIN, 0}});
    for (const TcpConn& c : conns_) fds.push_back({c.fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) return;
    if (fds[0].revents) return;
    if (fds[1].revents & POLLIN) serve_udp(buf, sizeof buf);
    for (size_t i = 0; i < conns_.size(); ++i)
      if (fds[3 + i].revents) serve_tcp(conns_[i]);
    std::erase_if(conns_, [](const TcpConn& c) { return c.fd < 0; });
    if (fds[2].revents & POLLIN) {
      for (int c; (c = ::accept4(tcp_fd_, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;)
        conns_.push_back(TcpConn{c, {}});
    }
  }
}

void LoopbackDns::serve_udp(char* buf, size_t cap) {
  for (;;) {
    Pending out;
    socklen_t len = sizeof out.to;
    ssize_t n = ::recvfrom(fd_, buf, cap, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&out.to), &len);
    if (n < 0) return;
    std::chrono::milliseconds delay{0};
    out.packet = answer(buf, size_t(n), true, &delay);
    if (out.packet.empty()) continue;
    out.due = std::chrono::steady_clock::now() + delay;
    pending_.push_back(std::move(out));
  }
}

void LoopbackDns::serve_tcp(TcpConn& c) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      c.in.append(buf, size_t(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    ::close(c.fd);  // the client closed, or failed
    c.fd = -1;
    return;
  }
  // Each message is a 2-byte length and the query; so is each answer.
  while (c.in.size() >= 2 && c.in.size() >= 2 + size_t(get16(c.in.data()))) {
    size_t len = get16(c.in.data());
    std::chrono::milliseconds unused{0};
    std::string reply = answer(c.in.data() + 2, len, false, &unused);
    c.in.erase(0, 2 + len);
    if (reply.empty()) continue;
    std::string framed;
    put16(framed, uint16_t(reply.size()));
    framed += reply;
    // Blocking is fine here: answers are small and the client reads them.
    ::send(c.fd, framed.data(), framed.size(), MSG_NOSIGNAL);
  }
}

std::string LoopbackDns::answer(const char* q, size_t n, bool udp, std::chrono::milliseconds* delay) {
  if (n < 12 || (uint8_t(q[2]) & 0x80)) return "";  // too short, or a response
  if (get16(q + 4) != 1) return "";                 // exactly one question, as resolvers send
  // The question name, label by label (queries do not use compression).
  std::string name;
  size_t i = 12;
  for (;;) {
    if (i >= n) return "";
    size_t label = uint8_t(q[i]);
    if (label == 0) break;
    if (label > 63 || i + 1 + label > n) return "";
    if (!name.empty()) name.push_back('.');
    name.append(q + i + 1, label);
    i += 1 + label;
  }
  size_t question_end = i + 1 + 4;
  if (question_end > n) return "";
  uint16_t qtype = get16(q + i + 1);
  uint16_t qclass = get16(q + i + 3);
  name = normalise(name);

  std::lock_guard<std::mutex> lk(mu_);
  ++counts_[name];
  if (!udp) ++tcp_count_;
  if (drop_) return "";
  if (auto d = delays_.find(qtype); d != delays_.end()) *delay = d->second;
  bool truncated = udp && truncate_;

  auto entry = names_.find(name);
  bool exists = entry != names_.end();
  std::string out;
  put16(out, get16(q));  // id
  // QR, the query's opcode and RD, AA; RCODE 3 (NXDOMAIN) for unknown names.
  // TC (0x0200) with no records when truncating.
  uint16_t flags = uint16_t(0x8000 | (get16(q + 2) & 0x7900) | 0x0400 | (truncated ? 0x0200 : 0) |
                            (exists ? 0 : 3));
  put16(out, flags);
  put16(out, 1);  // questions
  size_t ancount_at = out.size();
  put16(out, 0);  // answers, patched below
  put16(out, 0);  // authority
  put16(out, 0);  // additional
  out.append(q + 12, question_end - 12);
  if (!exists || qclass != kClassIn || truncated) return out;

  uint16_t count = 0;
  auto record = [&](uint16_t type, const void* rdata, uint16_t rdlen) {
    put16(out, 0xC00C);  // pointer to the question's name
    put16(out, type);
    put16(out, kClassIn);
    put32(out, entry->second.ttl_s);
    put16(out, rdlen);
    out.append(static_cast<const char*>(rdata), rdlen);
    ++count;
  };
  if (qtype == kTypeA)
    for (const in_addr& a : entry->second.v4) record(kTypeA, &a, sizeof a);
  if (qtype == kTypeAAAA)
    for (const in6_addr& a : entry->second.v6) record(kTypeAAAA, &a, sizeof a);
  out[ancount_at] = char(count >> 8);
  out[ancount_at + 1] = char(count & 0xff);
  return out;
}

}  // namespace barrage::testing
