// A small HTTP CONNECT proxy on 127.0.0.1 for tests. It runs its own thread
// (poll over plain non-blocking sockets), answers each CONNECT, and after
// "HTTP/1.1 200 Connection established" copies bytes both ways until both
// sides have closed. It only ever connects to loopback: targets are
// resolved without DNS ("localhost" and IP literals only), and a name it
// cannot resolve that way, or an address outside 127.0.0.0/8 and ::1, is
// answered 502, so a test cannot send traffic off the machine by mistake.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace barrage::test_support {

struct ConnectProxyOptions {
  // Non-empty user: every CONNECT must carry
  // "Proxy-Authorization: Basic base64(user:password)", else 407.
  std::string user;
  std::string password;
  // Targets, spelled as in the CONNECT line ("host:port", "[::1]:443"),
  // answered 403 Forbidden.
  std::vector<std::string> refuse;
  // Non-empty: sent verbatim in place of any answer to every CONNECT, then
  // the connection is closed. For tests of malformed or odd replies.
  std::string canned_reply;
};

class ConnectProxy {
 public:
  // Listens on 127.0.0.1 with a kernel-chosen port and starts the thread.
  // Never throws: check ok() / error().
  explicit ConnectProxy(ConnectProxyOptions options = {});
  // Stops the thread and closes every socket it holds.
  ~ConnectProxy();
  ConnectProxy(const ConnectProxy&) = delete;
  ConnectProxy& operator=(const ConnectProxy&) = delete;

  bool ok() const noexcept { return error_.empty(); }
  const std::string& error() const noexcept { return error_; }
  uint16_t port() const noexcept { return port_; }

  // Every CONNECT target seen, in order, whatever the answer was. Thread-safe.
  std::vector<std::string> targets() const;
  size_t connect_count() const;

 private:
  struct Conn;
  void run() noexcept;
  void on_request_head(Conn& c);
  bool resolve_and_connect(const std::string& target, Conn& c);

  ConnectProxyOptions options_;
  std::string expected_authorization_;  // "Basic ..." when user is set
  std::string error_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: the destructor's stop signal
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<std::string> targets_;  // guarded by mu_
};

}  // namespace barrage::test_support
