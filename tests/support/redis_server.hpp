// Test fixtures for shared limits. A throw-away redis-server: its own port on 127.0.0.1 (found
// free by binding port 0 first), its own directory, no persistence. The test
// can stop it (SIGKILL, as a crash would) and start it again on the same
// port. missing() when redis-server is not installed (tests skip then).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace barrage::testing {

class RedisServer {
 public:
  // extra: more redis-server arguments, e.g. "--requirepass secret".
  explicit RedisServer(std::string extra = "");
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  bool missing() const noexcept { return missing_; }
  bool running() const noexcept { return pid_ > 0; }
  uint16_t port() const noexcept { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

  bool start();  // true once it answers PING (bounded: 5 s)
  void kill();   // SIGKILL and reap
  // Runs redis-cli against it; returns its stdout.
  std::string cli(const std::string& args) const;

 private:
  std::string dir_, extra_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  bool missing_ = false;
};

// A TCP listener on 127.0.0.1 that is not Redis: it answers every
// connection with an HTTP error (garbage to a Redis client), or, silent,
// never answers at all. Its own thread; stopped by the destructor.
class NotRedis {
 public:
  explicit NotRedis(bool garbage);
  ~NotRedis();
  NotRedis(const NotRedis&) = delete;
  NotRedis& operator=(const NotRedis&) = delete;
  uint16_t port() const noexcept { return port_; }

 private:
  bool garbage_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::vector<int> clients_;
  std::thread thread_;
};

// A free TCP port on 127.0.0.1 (bound to 0, read, released).
uint16_t free_loopback_port();

}  // namespace barrage::testing
