// A tiny authoritative DNS server for tests: UDP (and TCP, same port) on
// 127.0.0.1 with a kernel-chosen port, its own thread, A and AAAA records
// from a table the test sets, NXDOMAIN for any other name. It counts
// queries per name (cache tests), can hold back answers of one type
// (answer-order tests), drop every query (resolver timeout tests) or
// truncate every UDP answer so the client retries over TCP. Tests point DnsOptions.servers
// at server() so no query ever leaves the machine.
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace barrage::testing {

class LoopbackDns {
 public:
  LoopbackDns();  // bound and answering on return; failures are test failures
  ~LoopbackDns();
  LoopbackDns(const LoopbackDns&) = delete;
  LoopbackDns& operator=(const LoopbackDns&) = delete;

  uint16_t port() const noexcept { return port_; }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }

  // Names are matched without regard to case and without a trailing dot.
  // addrs are IPv4 and IPv6 literals; a name with none of a type answers
  // NOERROR with no records (NODATA). Replaces any earlier entry.
  void set(const std::string& name, const std::vector<std::string>& addrs, uint32_t ttl_s = 60);
  void remove(const std::string& name);
  // Never answer (true) or answer again (false).
  void set_drop(bool drop);
  // Hold back every UDP answer of qtype (1 = A, 28 = AAAA) by delay.
  void set_delay(uint16_t qtype, std::chrono::milliseconds delay);
  // Answer UDP queries with the TC bit and no records (true), so resolvers
  // ask again over TCP, which gets the full answer.
  void set_truncate(bool truncate);

  int queries(const std::string& name) const;  // query packets for name, any type
  int total_queries() const;
  int tcp_queries() const;  // of those, how many came over TCP

 private:
  struct Entry {
    std::vector<in_addr> v4;
    std::vector<in6_addr> v6;
    uint32_t ttl_s = 60;
  };
  struct Pending {
    std::chrono::steady_clock::time_point due;
    std::string packet;
    sockaddr_in to{};
  };

  struct TcpConn {
    int fd = -1;
    std::string in;  // bytes received, not yet a whole length-prefixed message
  };

  void run();
  void serve_udp(char* buf, size_t cap);
  void serve_tcp(TcpConn& c);  // closes c.fd when the client is done
  // The answer to one query message, or "" to send none; *delay is how long
  // to hold it back (UDP only).
  std::string answer(const char* q, size_t n, bool udp, std::chrono::milliseconds* delay);

  int fd_ = -1;
  int tcp_fd_ = -1;  // listener
  int stop_fd_ = -1;  // eventfd: wakes the thread for shutdown
  uint16_t port_ = 0;
  mutable std::mutex mu_;
  std::map<std::string, Entry> names_;
  std::map<std::string, int> counts_;
  std::map<uint16_t, std::chrono::milliseconds> delays_;
  int tcp_count_ = 0;
  bool drop_ = false;
  bool truncate_ = false;
  std::vector<Pending> pending_;  // server thread only
  std::vector<TcpConn> conns_;    // server thread only
  std::thread thread_;
};

}  // namespace barrage::testing
