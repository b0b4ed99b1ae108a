// The loopback CONNECT proxy: one poll loop for the listener and every
// client/upstream pair. Written for clarity over speed; tests move a few
// kilobytes through it.
#include "support/connect_proxy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <list>
#include <string_view>

namespace barrage::test_support {
namespace {

constexpr size_t kMaxRequestHead = 16 * 1024;
constexpr size_t kMaxPending = 256 * 1024;  // per direction, before reading pauses

std::string lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

std::string reply(const char* status_line) {
  return std::string(status_line) + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
}

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

struct ConnectProxy::Conn {
  int client = -1;
  int upstream = -1;
  bool tunnel = false;          // 200 sent, splicing
  bool refusing = false;        // an answer other than 200 goes out, then we close
  bool client_eof = false;      // nothing more to read from the client
  bool upstream_eof = false;
  bool client_wr_shut = false;  // nothing more will be written to the client
  bool upstream_wr_shut = false;
  std::string head;             // the CONNECT request until its blank line
  std::string to_upstream;
  std::string to_client;

  ~Conn() {
    close_fd(client);
    close_fd(upstream);
  }
};

ConnectProxy::ConnectProxy(ConnectProxyOptions options) : options_(std::move(options)) {
  if (!options_.user.empty()) {
    const std::string plain = options_.user + ":" + options_.password;
    std::string b64(4 * ((plain.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                                  reinterpret_cast<const unsigned char*>(plain.data()),
                                  static_cast<int>(plain.size()));
    b64.resize(n > 0 ? static_cast<size_t>(n) : 0);
    expected_authorization_ = "Basic " + b64;
  }
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (listen_fd_ < 0 || wake_fd_ < 0) {
    error_ = std::string("connect proxy: socket/eventfd: ") + std::strerror(errno);
    return;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 64) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    error_ = std::string("connect proxy: bind/listen: ") + std::strerror(errno);
    return;
  }
  port_ = ntohs(addr.sin_port);
  try {
    thread_ = std::thread([this] { run(); });
  } catch (const std::exception& e) {
    error_ = std::string("connect proxy: cannot start thread: ") + e.what();
  }
}

ConnectProxy::~ConnectProxy() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
    thread_.join();
  }
  close_fd(listen_fd_);
  close_fd(wake_fd_);
}

std::vector<std::string> ConnectProxy::targets() const {
  std::lock_guard<std::mutex> lock(mu_);
  return targets_;
}

size_t ConnectProxy::connect_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return targets_.size();
}

// Loopback only, and no DNS: "localhost", 127.0.0.0/8 and ::1.
bool ConnectProxy::resolve_and_connect(const std::string& target, Conn& c) {
  std::string host;
  std::string port_text;
  if (!target.empty() && target.front() == '[') {
    const size_t close = target.find("]:");
    if (close == std::string::npos) return false;
    host = target.substr(1, close - 1);
    port_text = target.substr(close + 2);
  } else {
    const size_t colon = target.rfind(':');
    if (colon == std::string::npos) return false;
    host = target.substr(0, colon);
    port_text = target.substr(colon + 1);
  }
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  const unsigned long port = std::stoul(port_text);
  if (port == 0 || port > 65535) return false;

  sockaddr_storage ss{};
  socklen_t len = 0;
  in_addr a4{};
  in6_addr a6{};
  if (lower(host) == "localhost") host = "127.0.0.1";
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) {
    if ((ntohl(a4.s_addr) >> 24) != 127) return false;
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(port));
    sin->sin_addr = a4;
    len = sizeof *sin;
  } else if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    if (std::memcmp(&a6, &in6addr_loopback, sizeof a6) != 0) return false;
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(static_cast<uint16_t>(port));
    sin6->sin6_addr = a6;
    len = sizeof *sin6;
  } else {
    return false;
  }
  // A blocking connect is fine on loopback: it succeeds or is refused at once.
  const int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    ::close(fd);
    return false;
  }
  set_nonblocking(fd);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c.upstream = fd;
  return true;
}

// Called once the blank line ending the request head has arrived.
void ConnectProxy::on_request_head(Conn& c) {
  const size_t end = c.head.find("\r\n\r\n");
  std::string rest = c.head.substr(end + 4);
  const std::string head = c.head.substr(0, end + 2);
  c.head.clear();

  const size_t line_end = head.find("\r\n");
  const std::string line = head.substr(0, line_end);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
  c.refusing = true;  // unless the tunnel opens below
  if (sp2 == std::string::npos || line.compare(sp2 + 1, 7, "HTTP/1.") != 0) {
    c.to_client = reply("HTTP/1.1 400 Bad Request");
    return;
  }
  const std::string method = line.substr(0, sp1);
  const std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (method != "CONNECT") {
    c.to_client = reply("HTTP/1.1 405 Method Not Allowed");
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    targets_.push_back(target);
  }
  if (!options_.canned_reply.empty()) {
    c.to_client = options_.canned_reply;
    return;
  }
  if (!expected_authorization_.empty()) {
    std::string got;
    size_t pos = line_end + 2;
    while (pos < head.size()) {
      const size_t eol = head.find("\r\n", pos);
      const std::string h = head.substr(pos, eol - pos);
      pos = eol + 2;
      const size_t colon = h.find(':');
      if (colon == std::string::npos) continue;
      if (lower(h.substr(0, colon)) != "proxy-authorization") continue;
      got = h.substr(h.find_first_not_of(" \t", colon + 1) == std::string::npos
                         ? h.size()
                         : h.find_first_not_of(" \t", colon + 1));
    }
    // The scheme name is case-insensitive; the credentials are not.
    const bool match = got.size() == expected_authorization_.size() &&
                       lower(got.substr(0, 6)) == "basic " &&
                       got.substr(6) == expected_authorization_.substr(6);
    if (!match) {
      c.to_client =
          "HTTP/1.1 407 Proxy Authentication Required\r\n"
          "Proxy-Authenticate: Basic realm=\"barrage-test\"\r\n"
          "Content-Length: 0\r\nConnection: close\r\n\r\n";
      return;
    }
  }
  for (const std::string& r : options_.refuse) {
    if (r == target) {
      c.to_client = reply("HTTP/1.1 403 Forbidden");
      return;
    }
  }
  if (!resolve_and_connect(target, c)) {
    c.to_client = reply("HTTP/1.1 502 Bad Gateway");
    return;
  }
  c.refusing = false;
  c.tunnel = true;
  c.to_client = "HTTP/1.1 200 Connection established\r\n\r\n";
  // Bytes the client sent right behind the request (an eager ClientHello).
  c.to_upstream = std::move(rest);
}

void ConnectProxy::run() noexcept {
  try {
    std::list<Conn> conns;
    std::vector<pollfd> fds;
    std::vector<Conn*> owner;  // per pollfd after the first two
    char buf[16 * 1024];
    for (;;) {
      fds.clear();
      owner.clear();
      fds.push_back({wake_fd_, POLLIN, 0});
      fds.push_back({listen_fd_, POLLIN, 0});
      for (Conn& c : conns) {
        short ce = 0;
        short ue = 0;
        if (c.tunnel) {
          if (!c.client_eof && c.to_upstream.size() < kMaxPending) ce |= POLLIN;
          if (!c.upstream_eof && c.to_client.size() < kMaxPending) ue |= POLLIN;
          if (!c.to_upstream.empty()) ue |= POLLOUT;
        } else if (!c.client_eof && (!c.refusing || c.client_wr_shut)) {
          // Reading the request, or draining what the client still sends
          // after a refusal: closing with unread bytes would reset the
          // connection and could destroy the answer before it is read.
          ce |= POLLIN;
        }
        if (!c.to_client.empty()) ce |= POLLOUT;
        // Only fds we wait on are polled: an idle, hung-up fd would
        // otherwise report POLLHUP on every turn and spin the loop.
        if (ce != 0) {
          fds.push_back({c.client, ce, 0});
          owner.push_back(&c);
        }
        if (ue != 0) {
          fds.push_back({c.upstream, ue, 0});
          owner.push_back(&c);
        }
      }
      if (::poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[0].revents) return;
      if (fds[1].revents & POLLIN) {
        for (;;) {
          const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          conns.emplace_back().client = fd;
        }
      }
      for (size_t i = 2; i < fds.size(); ++i) {
        Conn& c = *owner[i - 2];
        const short re = fds[i].revents;
        const bool is_client = fds[i].fd == c.client;
        bool& eof = is_client ? c.client_eof : c.upstream_eof;
        bool& wr_shut = is_client ? c.client_wr_shut : c.upstream_wr_shut;
        std::string& out = is_client ? c.to_client : c.to_upstream;
        if ((fds[i].events & POLLIN) && (re & (POLLIN | POLLHUP | POLLERR))) {
          const ssize_t n = ::recv(fds[i].fd, buf, sizeof buf, 0);
          if (n > 0) {
            const std::string_view got(buf, static_cast<size_t>(n));
            if (!is_client) {
              c.to_client.append(got);
            } else if (c.tunnel) {
              c.to_upstream.append(got);
            } else if (!c.refusing) {
              c.head.append(got);
              if (c.head.find("\r\n\r\n") != std::string::npos) {
                on_request_head(c);
              } else if (c.head.size() > kMaxRequestHead) {
                c.to_client = reply("HTTP/1.1 431 Request Header Fields Too Large");
                c.refusing = true;
              }
            }  // else: drained and dropped after a refusal
          } else if (n == 0) {
            eof = true;
          } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            // Reset: this side can neither send nor receive any more.
            eof = true;
            wr_shut = true;
            out.clear();
          }
        }
        if ((fds[i].events & POLLOUT) && (re & (POLLOUT | POLLHUP | POLLERR))) {
          const ssize_t n = ::send(fds[i].fd, out.data(), out.size(), MSG_NOSIGNAL);
          if (n > 0) {
            out.erase(0, static_cast<size_t>(n));
          } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            eof = true;
            wr_shut = true;
            out.clear();
          }
        }
      }
      // Pass each side's EOF on once the data before it is out, and drop
      // what is finished.
      for (auto it = conns.begin(); it != conns.end();) {
        Conn& c = *it;
        if (c.tunnel && c.client_eof && c.to_upstream.empty() && !c.upstream_wr_shut) {
          ::shutdown(c.upstream, SHUT_WR);
          c.upstream_wr_shut = true;
        }
        if ((c.refusing || (c.tunnel && c.upstream_eof)) && c.to_client.empty() && !c.client_wr_shut) {
          ::shutdown(c.client, SHUT_WR);
          c.client_wr_shut = true;
        }
        bool done = c.client_eof && (c.refusing ? c.client_wr_shut : !c.tunnel);
        if (c.tunnel) done = c.client_eof && c.upstream_eof && c.client_wr_shut && c.upstream_wr_shut;
        it = done ? conns.erase(it) : std::next(it);
      }
    }
  } catch (...) {
    // Out of memory in a test fixture: stop serving; the test will notice.
  }
}

}  // namespace barrage::test_support
