// DNS answers through the engine's resolver: DnsResolver (c-ares on the
// engine's epoll backend and timer wheel) asks a UDP "server" on loopback
// that replies to each query with bytes from the input, the query's ID
// patched in so c-ares reads them rather than dropping them at once. Whatever
// the answers, the lookup ends exactly once, within c-ares' timeout: with
// addresses that are all IPv4 or IPv6 sockaddrs of the right size carrying
// the port asked for, or with no address and an error naming the host.
//
// Input: u16 length of the answer to the A query, that many bytes, then the
// answer to the AAAA query (the rest). One byte before them picks whether a
// second, different reply follows each first one (c-ares must ignore it or
// use it, never both).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_util.hpp"
#include "loop/backend.hpp"
#include "loop/clock.hpp"
#include "loop/timer_wheel.hpp"
#include "net/dns_resolver.hpp"

using namespace barrage;

namespace {

const char kHost[] = "fuzz.test";
constexpr uint16_t kPort = 443;

struct Answer final : DnsCallback {
  int calls = 0;
  std::vector<SockAddr> addrs;
  std::string error;
  void on_resolved(std::vector<SockAddr> a, std::string e) noexcept override {
    ++calls;
    addrs = std::move(a);
    error = std::move(e);
  }
};

// One process-wide lab: the fake server's socket, the loop, the resolver.
struct Lab {
  int server = -1;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<TimerWheel> wheel;
  std::unique_ptr<DnsResolver> resolver;

  Lab() {
    server = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    FUZZ_CHECK(server >= 0 && ::bind(server, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
               ::getsockname(server, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
    BackendChoice c = make_backend(BackendKind::epoll);
    FUZZ_CHECK(c.backend != nullptr);
    backend = std::move(c.backend);
    wheel = std::make_unique<TimerWheel>(monotonic_ms());
    DnsOptions o;
    o.servers = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
    o.hosts_file = "";
    o.max_cache_entries = 0;  // every input asks again
    o.negative_ttl_s = 0;
    o.timeout_ms = 5;  // an answer c-ares rejects costs this much
    o.tries = 1;
    std::string err;
    resolver = DnsResolver::create(*backend, *wheel, o, &err);
    if (!resolver) std::fprintf(stderr, "fuzz_dns_answer: %s\n", err.c_str());
    FUZZ_CHECK(resolver != nullptr);
  }

  // Replies to every query waiting on the server socket.
  void serve(std::string_view a_answer, std::string_view aaaa_answer, bool twice) {
    for (;;) {
      unsigned char q[512];
      sockaddr_storage from{};
      socklen_t flen = sizeof from;
      ssize_t n = ::recvfrom(server, q, sizeof q, 0, reinterpret_cast<sockaddr*>(&from), &flen);
      if (n < 0) return;
      if (n < 12 + 5) continue;  // not a query c-ares would send
      // The question's type is the two bytes after its name's zero label.
      size_t i = 12;
      while (i < size_t(n) && q[i] != 0) i += size_t(q[i]) + 1;
      const uint16_t qtype = i + 2 < size_t(n) ? uint16_t(q[i + 1] << 8 | q[i + 2]) : 0;
      std::string reply(qtype == 28 ? aaaa_answer : a_answer);
      if (reply.size() >= 2) std::memcpy(reply.data(), q, 2);  // the query's ID
      ::sendto(server, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
      if (twice && !reply.empty()) {
        reply.back() = char(reply.back() ^ 0x5a);
        ::sendto(server, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
      }
    }
  }

  // One loop turn as the engine drives it: wheel timeout bounds the wait.
  void turn() {
    wheel->advance(monotonic_ms());
    int64_t t = wheel->timeout_ms(monotonic_ms());
    if (t < 0 || t > 2) t = 2;
    if (backend->has_pending()) t = 0;
    FUZZ_CHECK(backend->wait(t * 1000000) >= 0);
    wheel->advance(monotonic_ms());
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Lab* lab = new Lab;  // lives for the process, as libFuzzer's loop does
  fuzz::Input in(data, size);
  const bool twice = in.byte() & 1;
  const std::string_view a_answer = in.take(in.u16());
  const std::string_view aaaa_answer = in.rest();

  Answer ans;
  const bool at_once = lab->resolver->resolve(kHost, kPort, &ans);
  FUZZ_CHECK(!at_once);  // no cache, no hosts file: it must ask
  const uint64_t until = monotonic_ms() + 2000;  // c-ares gives up after ~5 ms per query
  while (ans.calls == 0 && monotonic_ms() < until) {
    lab->serve(a_answer, aaaa_answer, twice);
    lab->turn();
  }
  FUZZ_CHECK(ans.calls == 1);
  // Late replies and timers of this lookup must not call it again.
  lab->serve(a_answer, aaaa_answer, false);
  lab->turn();
  FUZZ_CHECK(ans.calls == 1);
  FUZZ_CHECK(lab->resolver->queries_in_flight() == 0);
  if (std::getenv("FUZZ_DNS_VERBOSE")) {  // what a seed resolves to
    std::fprintf(stderr, "answer: %zu addresses%s%s\n", ans.addrs.size(), ans.error.empty() ? "" : ", error: ",
                 ans.error.c_str());
    for (const SockAddr& s : ans.addrs) std::fprintf(stderr, "  %s\n", s.to_string().c_str());
  }
  if (ans.error.empty()) {
    FUZZ_CHECK(!ans.addrs.empty());
    for (const SockAddr& s : ans.addrs) {
      const int family = s.get()->sa_family;
      FUZZ_CHECK(family == AF_INET || family == AF_INET6);
      FUZZ_CHECK(s.len == (family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6)));
      const uint16_t port = family == AF_INET ? reinterpret_cast<const sockaddr_in*>(s.get())->sin_port
                                              : reinterpret_cast<const sockaddr_in6*>(s.get())->sin6_port;
      FUZZ_CHECK(ntohs(port) == kPort);
    }
  } else {
    FUZZ_CHECK(ans.addrs.empty());
    FUZZ_CHECK(ans.error.find(kHost) != std::string::npos);
  }
  return 0;
}
