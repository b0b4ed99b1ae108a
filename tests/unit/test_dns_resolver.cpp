// Unit tests for engine/net/dns_resolver: c-ares driven by the engine's own
// Backend and TimerWheel, on both backends, against the loopback DNS server
// of tests/support (never the system's resolver: every resolver here has
// DnsOptions.servers pointed at the fixture and no hosts file unless the
// test writes one). Covers A+AAAA answers and their RFC 8305 order, errors,
// the TTL and negative caches, shared queries, cancel, timeouts, the
// synchronous paths (literals, localhost, hosts file) and destruction with
// queries in flight.
#include "net/dns_resolver.hpp"

#include <arpa/inet.h>
#include <ares.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "loop/backend.hpp"
#include "loop/clock.hpp"
#include "loop/timer_wheel.hpp"
#include "loopback_dns.hpp"

namespace barrage {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::LoopbackDns;

constexpr int64_t kMs = 1000000;  // ns per ms

// Records every answer; fails the test on a call after it was cancelled.
struct Answer final : DnsCallback {
  int calls = 0;
  std::vector<SockAddr> addrs;
  std::string error;
  bool cancelled = false;
  std::function<void(Answer&)> hook;

  void on_resolved(std::vector<SockAddr> a, std::string e) noexcept override {
    if (cancelled) ADD_FAILURE() << "on_resolved after cancel";
    ++calls;
    addrs = std::move(a);
    error = std::move(e);
    if (hook) hook(*this);
  }
  std::vector<std::string> texts() const {
    std::vector<std::string> out;
    for (const SockAddr& s : addrs) out.push_back(s.to_string());
    return out;
  }
  std::vector<int> families() const {
    std::vector<int> out;
    for (const SockAddr& s : addrs) out.push_back(s.storage.ss_family);
    return out;
  }
};

std::string kind_name(const ::testing::TestParamInfo<BackendKind>& info) {
  return backend_name(info.param);
}

class DnsResolverTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    BackendChoice c = make_backend(GetParam());
    if (!c.backend) {
      if (GetParam() == BackendKind::io_uring) GTEST_SKIP() << c.why;
      FAIL() << c.why;
    }
    backend_ = std::move(c.backend);
    wheel_ = std::make_unique<TimerWheel>(monotonic_ms());
  }
  void TearDown() override {
    resolver_.reset();  // before the backend and wheel it uses
  }

  // Options that keep every query on the fixture.
  DnsOptions options() {
    DnsOptions o;
    o.servers = dns_.server();
    o.hosts_file = "";
    o.timeout_ms = 2000;
    o.tries = 1;
    return o;
  }

  DnsResolver& make(const DnsOptions& o) {
    std::string err;
    resolver_ = DnsResolver::create(*backend_, *wheel_, o, &err);
    EXPECT_NE(resolver_, nullptr) << err;
    return *resolver_;
  }
  DnsResolver& make() { return make(options()); }

  // One loop turn the way the engine drives it: the wheel's timeout bounds
  // the backend's wait, then due timers fire.
  void turn(int64_t max_ms = 10) {
    wheel_->advance(monotonic_ms());
    int64_t t = wheel_->timeout_ms(monotonic_ms());
    if (t < 0 || t > max_ms) t = max_ms;
    if (backend_->has_pending()) t = 0;
    int rc = backend_->wait(t * kMs);
    ASSERT_GE(rc, 0) << "wait() failed: " << std::strerror(-rc);
    wheel_->advance(monotonic_ms());
  }

  template <class Pred>
  bool run_until(Pred pred, std::chrono::milliseconds limit = 5000ms) {
    auto deadline = Clock::now() + limit;
    while (!pred()) {
      if (Clock::now() > deadline) return false;
      turn();
      if (::testing::Test::HasFatalFailure()) return false;
    }
    return true;
  }

  void settle(std::chrono::milliseconds d = 100ms) {
    auto deadline = Clock::now() + d;
    while (Clock::now() < deadline) turn(5);
  }

  // Resolves through the loop; returns false if no answer came in time.
  bool resolve_and_wait(const std::string& host, uint16_t port, Answer& a,
                        std::chrono::milliseconds limit = 5000ms) {
    int before = a.calls;
    if (resolver_->resolve(host, port, &a)) return true;
    return run_until([&] { return a.calls > before; }, limit);
  }

  LoopbackDns dns_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<TimerWheel> wheel_;
  std::unique_ptr<DnsResolver> resolver_;  // last: destroyed first
};

// ---------------------------------------------------------------------------
// Answers and their order.

TEST_P(DnsResolverTest, NameWithAandAaaaGetsBothFamiliesInterleaved) {
  dns_.set("dual.test", {"192.0.2.1", "192.0.2.2", "192.0.2.3", "2001:db8::1", "2001:db8::2"});
  make();
  Answer a;
  EXPECT_FALSE(resolver_->resolve("dual.test", 443, &a)) << "answered without a query";
  ASSERT_TRUE(run_until([&] { return a.calls == 1; }));
  EXPECT_EQ(a.error, "");
  ASSERT_EQ(a.addrs.size(), 5u);
  // Alternating families while both last, then the rest of the larger one.
  std::vector<int> f = a.families();
  int first = f[0];
  int other = first == AF_INET ? AF_INET6 : AF_INET;
  EXPECT_EQ(f, (std::vector<int>{first, other, first, other, AF_INET})) << ::testing::PrintToString(a.texts());
  // Order within a family is the server's; every address carries the port.
  std::vector<std::string> v4, v6;
  for (const std::string& t : a.texts()) (t[0] == '[' ? v6 : v4).push_back(t);
  EXPECT_EQ(v4, (std::vector<std::string>{"192.0.2.1:443", "192.0.2.2:443", "192.0.2.3:443"}));
  EXPECT_EQ(v6, (std::vector<std::string>{"[2001:db8::1]:443", "[2001:db8::2]:443"}));
  EXPECT_EQ(dns_.queries("dual.test"), 2) << "one A and one AAAA query";
}

// RFC 8305 §4 as the resolver applies it: the first family is the one
// whose answer came first. The fixture holds back one type's answers.
TEST_P(DnsResolverTest, FirstAddressFamilyIsThatOfTheFirstAnswer) {
  dns_.set("v6first.test", {"192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2"});
  dns_.set("v4first.test", {"192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2"});
  make();
  Answer a;
  dns_.set_delay(1, 150ms);  // A answers late
  ASSERT_TRUE(resolve_and_wait("v6first.test", 80, a));
  EXPECT_EQ(a.families(), (std::vector<int>{AF_INET6, AF_INET, AF_INET6, AF_INET}))
      << ::testing::PrintToString(a.texts());

  dns_.set_delay(1, 0ms);
  dns_.set_delay(28, 150ms);  // AAAA answers late
  Answer b;
  ASSERT_TRUE(resolve_and_wait("v4first.test", 80, b));
  EXPECT_EQ(b.families(), (std::vector<int>{AF_INET, AF_INET6, AF_INET, AF_INET6}))
      << ::testing::PrintToString(b.texts());
}

TEST_P(DnsResolverTest, OnlyOneFamilyPresentIsASuccess) {
  dns_.set("v4only.test", {"192.0.2.7"});
  dns_.set("v6only.test", {"2001:db8::7"});
  make();
  Answer a, b;
  ASSERT_TRUE(resolve_and_wait("v4only.test", 1, a));
  EXPECT_EQ(a.error, "");
  EXPECT_EQ(a.texts(), std::vector<std::string>{"192.0.2.7:1"});
  ASSERT_TRUE(resolve_and_wait("v6only.test", 2, b));
  EXPECT_EQ(b.error, "");
  EXPECT_EQ(b.texts(), std::vector<std::string>{"[2001:db8::7]:2"});
}

// A truncated UDP answer makes c-ares ask again over TCP: a socket that
// needs write interest while connecting, then read interest.
TEST_P(DnsResolverTest, TruncatedAnswerIsRetriedOverTcp) {
  dns_.set("big.test", {"192.0.2.80", "2001:db8::80"});
  dns_.set_truncate(true);
  make();
  Answer a;
  ASSERT_TRUE(resolve_and_wait("big.test", 443, a));
  EXPECT_EQ(a.error, "");
  EXPECT_EQ(a.addrs.size(), 2u);
  EXPECT_GE(dns_.tcp_queries(), 2) << "the answer did not come over TCP";
}

// ---------------------------------------------------------------------------
// Errors.

TEST_P(DnsResolverTest, NxdomainErrorNamesTheHostAndCaresMessage) {
  make();
  Answer a;
  ASSERT_TRUE(resolve_and_wait("nope.test", 443, a));
  EXPECT_TRUE(a.addrs.empty());
  EXPECT_EQ(a.error, std::string("cannot resolve 'nope.test': ") + ares_strerror(ARES_ENOTFOUND));
}

// The name exists but has neither A nor AAAA records.
TEST_P(DnsResolverTest, NameWithoutAddressesIsAnError) {
  dns_.set("empty.test", {});
  make();
  Answer a;
  ASSERT_TRUE(resolve_and_wait("empty.test", 443, a));
  EXPECT_TRUE(a.addrs.empty());
  EXPECT_NE(a.error.find("'empty.test'"), std::string::npos) << a.error;
}

// A server that never answers: a clear error within the configured bound.
TEST_P(DnsResolverTest, SilentServerTimesOutWithAClearError) {
  dns_.set_drop(true);
  DnsOptions o = options();
  o.timeout_ms = 200;
  o.tries = 1;
  make(o);
  Answer a;
  auto start = Clock::now();
  EXPECT_FALSE(resolver_->resolve("slow.test", 443, &a));
  ASSERT_TRUE(run_until([&] { return a.calls == 1; }, 5000ms)) << "no timeout reported";
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  EXPECT_LT(ms, 2000) << "timeout of 200 ms took " << ms << " ms";
  EXPECT_GE(ms, 150);
  EXPECT_TRUE(a.addrs.empty());
  EXPECT_EQ(a.error, std::string("cannot resolve 'slow.test': ") + ares_strerror(ARES_ETIMEOUT));
  EXPECT_GE(dns_.queries("slow.test"), 2);
  EXPECT_EQ(resolver_->queries_in_flight(), 0u);
}

TEST_P(DnsResolverTest, UnparsableServersFailCreation) {
  DnsOptions o = options();
  o.servers = "not-an-address";
  std::string err;
  auto r = DnsResolver::create(*backend_, *wheel_, o, &err);
  EXPECT_EQ(r, nullptr);
  EXPECT_NE(err.find("not-an-address"), std::string::npos) << err;
}

TEST_P(DnsResolverTest, Ipv6ServerSyntaxIsAccepted) {
  DnsOptions o = options();
  o.servers = "[::1]:5353," + dns_.server();
  std::string err;
  auto r = DnsResolver::create(*backend_, *wheel_, o, &err);
  EXPECT_NE(r, nullptr) << err;
}

// ---------------------------------------------------------------------------
// Caching.

// TTL 2 s with min_ttl_s 1: still cached after 1.3 s (so the answer's own
// TTL was read, not just the minimum), asked again after 2.1 s.
TEST_P(DnsResolverTest, AnswerIsCachedForItsTtlThenAskedAgain) {
  dns_.set("ttl.test", {"192.0.2.10", "2001:db8::10"}, 2);
  make();
  Answer a;
  ASSERT_TRUE(resolve_and_wait("ttl.test", 80, a));
  ASSERT_EQ(dns_.queries("ttl.test"), 2);
  auto first_answer = Clock::now();
  auto wait_until = [&](std::chrono::milliseconds after) {
    settle(std::chrono::duration_cast<std::chrono::milliseconds>(first_answer + after - Clock::now()));
  };

  Answer b;
  EXPECT_TRUE(resolver_->resolve("TTL.test", 8080, &b)) << "cached answer not given at once";
  EXPECT_EQ(b.calls, 1);
  EXPECT_EQ(b.error, "");
  ASSERT_EQ(b.addrs.size(), 2u);
  for (const std::string& t : b.texts()) EXPECT_TRUE(t.ends_with(":8080")) << t;
  EXPECT_EQ(dns_.queries("ttl.test"), 2) << "a cache hit queried the server";

  wait_until(1300ms);
  EXPECT_TRUE(resolver_->resolve("ttl.test", 80, &b)) << "expired before its TTL of 2 s";
  EXPECT_EQ(dns_.queries("ttl.test"), 2);

  wait_until(2100ms);
  Answer c;
  EXPECT_FALSE(resolver_->resolve("ttl.test", 80, &c)) << "expired answer still served";
  ASSERT_TRUE(run_until([&] { return c.calls == 1; }));
  EXPECT_EQ(c.error, "");
  EXPECT_EQ(dns_.queries("ttl.test"), 4);
}

TEST_P(DnsResolverTest, TtlIsClampedToMaxTtl) {
  dns_.set("long.test", {"192.0.2.11"}, 86400);
  DnsOptions o = options();
  o.max_ttl_s = 1;
  make(o);
  Answer a;
  ASSERT_TRUE(resolve_and_wait("long.test", 80, a));
  auto answered = Clock::now();
  EXPECT_TRUE(resolver_->resolve("long.test", 80, &a));
  settle(std::chrono::duration_cast<std::chrono::milliseconds>(answered + 1100ms - Clock::now()));
  EXPECT_FALSE(resolver_->resolve("long.test", 80, &a)) << "TTL above max_ttl_s was kept";
  ASSERT_TRUE(run_until([&] { return a.calls == 3; }));
}

TEST_P(DnsResolverTest, ZeroTtlIsRaisedToMinTtl) {
  dns_.set("zero.test", {"192.0.2.12"}, 0);
  make();  // min_ttl_s = 1
  Answer a;
  ASSERT_TRUE(resolve_and_wait("zero.test", 80, a));
  EXPECT_TRUE(resolver_->resolve("zero.test", 80, &a)) << "TTL 0 was not raised to min_ttl_s";
  EXPECT_EQ(dns_.queries("zero.test"), 2);
}

TEST_P(DnsResolverTest, FailureIsCachedForNegativeTtl) {
  DnsOptions o = options();
  o.negative_ttl_s = 1;
  make(o);
  Answer a;
  ASSERT_TRUE(resolve_and_wait("gone.test", 80, a));
  int asked = dns_.queries("gone.test");
  auto answered = Clock::now();
  Answer b;
  EXPECT_TRUE(resolver_->resolve("gone.test", 80, &b));
  EXPECT_EQ(b.error, a.error);
  EXPECT_EQ(dns_.queries("gone.test"), asked);

  // The name appears; once the negative entry expires it is found.
  dns_.set("gone.test", {"192.0.2.13"});
  settle(std::chrono::duration_cast<std::chrono::milliseconds>(answered + 1100ms - Clock::now()));
  Answer c;
  ASSERT_TRUE(resolve_and_wait("gone.test", 80, c));
  EXPECT_EQ(c.error, "");
  EXPECT_EQ(c.texts(), std::vector<std::string>{"192.0.2.13:80"});
}

TEST_P(DnsResolverTest, CacheHoldsAtMostMaxEntries) {
  for (const char* n : {"c1.test", "c2.test", "c3.test"}) dns_.set(n, {"192.0.2.20"});
  DnsOptions o = options();
  o.max_cache_entries = 2;
  make(o);
  Answer a;
  for (const char* n : {"c1.test", "c2.test", "c3.test"}) ASSERT_TRUE(resolve_and_wait(n, 80, a));
  EXPECT_EQ(resolver_->cache_size(), 2u);
  EXPECT_TRUE(resolver_->resolve("c3.test", 80, &a));
  EXPECT_FALSE(resolver_->resolve("c1.test", 80, &a)) << "the oldest entry was not the one evicted";
  ASSERT_TRUE(run_until([&] { return !a.dns_waiting(); }));
}

// ---------------------------------------------------------------------------
// Sharing, cancelling, callbacks that call back in.

TEST_P(DnsResolverTest, ConcurrentResolvesOfOneHostShareOneQuery) {
  dns_.set("shared.test", {"192.0.2.30", "2001:db8::30"});
  make();
  Answer a, b;
  EXPECT_FALSE(resolver_->resolve("shared.test", 443, &a));
  EXPECT_FALSE(resolver_->resolve("Shared.Test", 8443, &b));
  EXPECT_EQ(resolver_->queries_in_flight(), 1u);
  ASSERT_TRUE(run_until([&] { return a.calls == 1 && b.calls == 1; }));
  EXPECT_EQ(dns_.queries("shared.test"), 2) << "one A and one AAAA for both waiters";
  ASSERT_EQ(a.addrs.size(), 2u);
  ASSERT_EQ(b.addrs.size(), 2u);
  for (const std::string& t : a.texts()) EXPECT_TRUE(t.ends_with(":443")) << t;
  for (const std::string& t : b.texts()) EXPECT_TRUE(t.ends_with(":8443")) << t;
}

TEST_P(DnsResolverTest, CancelledWaiterIsNeverCalled) {
  dns_.set("cancel.test", {"192.0.2.40"});
  make();
  Answer a, b;
  EXPECT_FALSE(resolver_->resolve("cancel.test", 80, &a));
  EXPECT_FALSE(resolver_->resolve("cancel.test", 80, &b));
  resolver_->cancel(&a);
  a.cancelled = true;
  EXPECT_FALSE(a.dns_waiting());
  ASSERT_TRUE(run_until([&] { return b.calls == 1; }));
  settle(30ms);
  EXPECT_EQ(a.calls, 0);
  EXPECT_EQ(resolver_->queries_in_flight(), 0u);
}

// A waiter destroyed without cancel() is forgotten, not called.
TEST_P(DnsResolverTest, DestroyedWaiterIsNeverCalled) {
  dns_.set("gone-waiter.test", {"192.0.2.41"});
  make();
  auto doomed = std::make_unique<Answer>();
  Answer b;
  EXPECT_FALSE(resolver_->resolve("gone-waiter.test", 80, doomed.get()));
  EXPECT_FALSE(resolver_->resolve("gone-waiter.test", 80, &b));
  doomed.reset();  // ASan reports any later use
  ASSERT_TRUE(run_until([&] { return b.calls == 1; }));
}

// The last waiter cancels; the query still finishes and fills the cache.
TEST_P(DnsResolverTest, QueryWhoseOnlyWaiterCancelledStillFillsTheCache) {
  dns_.set("orphan.test", {"192.0.2.42"});
  make();
  Answer a;
  EXPECT_FALSE(resolver_->resolve("orphan.test", 80, &a));
  resolver_->cancel(&a);
  a.cancelled = true;
  ASSERT_TRUE(run_until([&] { return resolver_->queries_in_flight() == 0; }));
  Answer b;
  EXPECT_TRUE(resolver_->resolve("orphan.test", 80, &b));
  EXPECT_EQ(b.texts(), std::vector<std::string>{"192.0.2.42:80"});
}

// Callbacks may resolve again: the same host (now cached, answered inside
// the callback) and another host (a new query), and cancel a co-waiter.
TEST_P(DnsResolverTest, CallbacksMayResolveAndCancelAgain) {
  dns_.set("first.test", {"192.0.2.50"});
  dns_.set("second.test", {"192.0.2.51"});
  make();
  Answer a, b, again, next;
  bool again_at_once = false, next_at_once = true;
  a.hook = [&](Answer&) {
    resolver_->cancel(&b);
    b.cancelled = true;
    again_at_once = resolver_->resolve("first.test", 1, &again);
    next_at_once = resolver_->resolve("second.test", 2, &next);
  };
  b.hook = a.hook;  // whichever runs first cancels the other
  EXPECT_FALSE(resolver_->resolve("first.test", 80, &a));
  EXPECT_FALSE(resolver_->resolve("first.test", 80, &b));
  ASSERT_TRUE(run_until([&] { return next.calls == 1; }));
  EXPECT_EQ(a.calls + b.calls, 1);
  EXPECT_TRUE(again_at_once);
  EXPECT_EQ(again.texts(), std::vector<std::string>{"192.0.2.50:1"});
  EXPECT_FALSE(next_at_once);
  EXPECT_EQ(next.texts(), std::vector<std::string>{"192.0.2.51:2"});
}

// resolve() with a callback already waiting moves it to the new host.
TEST_P(DnsResolverTest, ResolveWhileWaitingReplacesTheEarlierResolve) {
  dns_.set("old.test", {"192.0.2.60"});
  dns_.set("new.test", {"192.0.2.61"});
  make();
  Answer a;
  EXPECT_FALSE(resolver_->resolve("old.test", 80, &a));
  EXPECT_FALSE(resolver_->resolve("new.test", 80, &a));
  ASSERT_TRUE(run_until([&] { return resolver_->queries_in_flight() == 0; }));
  settle(20ms);
  EXPECT_EQ(a.calls, 1);
  EXPECT_EQ(a.texts(), std::vector<std::string>{"192.0.2.61:80"});
}

// ---------------------------------------------------------------------------
// Answers without DNS.

TEST_P(DnsResolverTest, IpLiteralsAndLocalhostAreAnsweredAtOnceWithoutQueries) {
  make();
  Answer a;
  EXPECT_TRUE(resolver_->resolve("192.0.2.1", 443, &a));
  EXPECT_EQ(a.texts(), std::vector<std::string>{"192.0.2.1:443"});
  EXPECT_TRUE(resolver_->resolve("2001:db8::5", 443, &a));
  EXPECT_EQ(a.texts(), std::vector<std::string>{"[2001:db8::5]:443"});
  EXPECT_TRUE(resolver_->resolve("localhost", 8000, &a));
  EXPECT_EQ(a.texts(), (std::vector<std::string>{"127.0.0.1:8000", "[::1]:8000"}));
  EXPECT_TRUE(resolver_->resolve("api.localhost", 8000, &a));
  EXPECT_EQ(a.addrs.size(), 2u);
  EXPECT_EQ(a.calls, 4);
  EXPECT_EQ(a.error, "");
  settle(20ms);
  EXPECT_EQ(dns_.total_queries(), 0);
}

// The system's configuration (resolv.conf, /etc/hosts) loads; only names
// that need no DNS are asked, so nothing leaves the machine.
TEST_P(DnsResolverTest, SystemConfigurationLoadsAndAnswersLocalNames) {
  DnsOptions o;  // servers "" = resolv.conf, hosts_file = /etc/hosts
  make(o);
  ASSERT_NE(resolver_, nullptr);
  Answer a;
  EXPECT_TRUE(resolver_->resolve("localhost", 80, &a));
  EXPECT_EQ(a.error, "");
  EXPECT_TRUE(resolver_->resolve("127.0.0.1", 80, &a));
  EXPECT_EQ(a.texts(), std::vector<std::string>{"127.0.0.1:80"});
}

// c-ares refuses some names without sending a query (RFC 7686 .onion):
// the failure comes back through the same callback before resolve() returns.
TEST_P(DnsResolverTest, NameCaresRefusesWithoutAQueryIsAnErrorAtOnce) {
  make();
  Answer a;
  EXPECT_TRUE(resolver_->resolve("hidden.onion", 443, &a));
  EXPECT_EQ(a.calls, 1);
  EXPECT_TRUE(a.addrs.empty());
  EXPECT_NE(a.error.find("'hidden.onion'"), std::string::npos) << a.error;
  EXPECT_EQ(resolver_->queries_in_flight(), 0u);
  settle(20ms);
  EXPECT_EQ(a.calls, 1);
  EXPECT_EQ(dns_.total_queries(), 0);
}

TEST_P(DnsResolverTest, EmptyHostIsAnErrorAtOnce) {
  make();
  Answer a;
  EXPECT_TRUE(resolver_->resolve("", 443, &a));
  EXPECT_TRUE(a.addrs.empty());
  EXPECT_NE(a.error, "");
}

TEST_P(DnsResolverTest, HostsFileNamesAreAnsweredAtOnce) {
  char path[] = "/tmp/barrage_hosts_XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string text =
      "# comment line\n"
      "192.0.2.70  MyHost.test alias.test   # trailing comment\n"
      "2001:db8::70 myhost.test\n"
      "192.0.2.71 myhost.test\n"
      "fe80::1%eth0 scoped.test\n"
      "not-an-ip broken.test\n";
  ASSERT_EQ(::write(fd, text.data(), text.size()), ssize_t(text.size()));
  ::close(fd);
  DnsOptions o = options();
  o.hosts_file = path;
  make(o);
  ::unlink(path);
  Answer a;
  EXPECT_TRUE(resolver_->resolve("myhost.TEST", 80, &a));
  EXPECT_EQ(a.texts(), (std::vector<std::string>{"192.0.2.70:80", "[2001:db8::70]:80", "192.0.2.71:80"}));
  EXPECT_TRUE(resolver_->resolve("alias.test", 81, &a));
  EXPECT_EQ(a.texts(), std::vector<std::string>{"192.0.2.70:81"});
  EXPECT_FALSE(resolver_->resolve("broken.test", 80, &a)) << "a bad line produced an entry";
  ASSERT_TRUE(run_until([&] { return !a.dns_waiting(); }));
  EXPECT_EQ(dns_.queries("myhost.test"), 0);
}

// ---------------------------------------------------------------------------
// Teardown.

// Destroying the resolver with queries in flight (to a silent server, so
// they certainly are) calls nobody; ASan checks nothing leaks or dangles.
TEST_P(DnsResolverTest, DestructionWithQueriesInFlightCallsNobody) {
  dns_.set_drop(true);
  make();
  Answer a, b;
  EXPECT_FALSE(resolver_->resolve("inflight1.test", 80, &a));
  EXPECT_FALSE(resolver_->resolve("inflight2.test", 80, &b));
  ASSERT_TRUE(run_until([&] { return dns_.total_queries() >= 4; }));
  EXPECT_GT(wheel_->size(), 0u) << "no c-ares timeout armed";
  resolver_.reset();
  a.cancelled = b.cancelled = true;  // any call now fails the test
  EXPECT_FALSE(a.dns_waiting());
  EXPECT_FALSE(b.dns_waiting());
  EXPECT_EQ(wheel_->size(), 0u) << "the resolver's timer outlived it";
  settle(50ms);  // the backend must not call the resolver's freed watches
}

// The same before the loop has turned at all (io_uring has not submitted
// the socket's poll yet).
TEST_P(DnsResolverTest, DestructionBeforeTheLoopTurnsCallsNobody) {
  make();
  Answer a;
  EXPECT_FALSE(resolver_->resolve("early.test", 80, &a));
  resolver_.reset();
  a.cancelled = true;
  settle(30ms);
}

// Many hosts at once through one channel: every waiter answered once, with
// its own host's address. The burst of answers can overrun the client
// socket's receive queue on a loaded machine (the fixture answers faster
// than any real server), so this test allows c-ares to retransmit.
TEST_P(DnsResolverTest, ManyHostsAtOnceAllAnswered) {
  constexpr int kHosts = 100;
  // Appended piecewise: GCC 12 warns (-Wrestrict, a false positive) on
  // "literal" + std::to_string(...).
  auto name = [](int i) {
    std::string s = "h";
    s += std::to_string(i);
    s += ".test";
    return s;
  };
  auto addr = [](int i) {
    std::string s = "192.0.2.";
    s += std::to_string(i + 1);
    return s;
  };
  for (int i = 0; i < kHosts; ++i) dns_.set(name(i), {addr(i)});
  DnsOptions o = options();
  o.timeout_ms = 500;
  o.tries = 4;
  make(o);
  std::vector<Answer> answers(kHosts);
  for (int i = 0; i < kHosts; ++i) EXPECT_FALSE(resolver_->resolve(name(i), 80, &answers[i]));
  ASSERT_TRUE(run_until([&] { return resolver_->queries_in_flight() == 0; }, 10000ms));
  EXPECT_GE(dns_.total_queries(), 2 * kHosts);
  for (int i = 0; i < kHosts; ++i) {
    EXPECT_EQ(answers[i].calls, 1) << i;
    EXPECT_EQ(answers[i].error, "") << i;
    EXPECT_EQ(answers[i].texts(), std::vector<std::string>{addr(i) + ":80"}) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, DnsResolverTest,
                         ::testing::Values(BackendKind::io_uring, BackendKind::epoll), kind_name);

}  // namespace
}  // namespace barrage
