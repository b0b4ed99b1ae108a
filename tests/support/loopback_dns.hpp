// A tiny authoritative DNS server for tests: UDP on 127.0.0.1 with a
// kernel-chosen port, its own thread, A and AAAA records from a table the
// test sets, NXDOMAIN for any other name. It counts queries per name (cache
// tests), can hold back answers of one type (answer-order tests) and can
// drop every query (resolver timeout tests). Tests point DnsOptions.servers
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
  // Hold back every answer of qtype (1 = A, 28 = AAAA) by delay.
  void set_delay(uint16_t qtype, std::chrono::milliseconds delay);

  int queries(const std::string& name) const;  // query packets for name, any type
  int total_queries() const;

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

  void run();
  // The answer to one query packet, or "" to send none; *delay is how long
  // to hold it back.
  std::string answer(const char* q, size_t n, std::chrono::milliseconds* delay);

  int fd_ = -1;
  int stop_fd_ = -1;  // eventfd: wakes the thread for shutdown
  uint16_t port_ = 0;
  mutable std::mutex mu_;
  std::map<std::string, Entry> names_;
  std::map<std::string, int> counts_;
  std::map<uint16_t, std::chrono::milliseconds> delays_;
  bool drop_ = false;
  std::vector<Pending> pending_;  // server thread only
  std::thread thread_;
};

}  // namespace barrage::testing
