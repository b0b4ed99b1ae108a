// The network lab against real packets: round-trip time within tolerance of
// the delay, loss close to the setting (and exactly what the delay line
// counted), a link that goes down drops everything and then recovers, a rate
// cap bounds TCP throughput, a server started inside answers across the link,
// and nothing (namespace, interface, process) is left once the lab ends or
// its owner is killed. Skips when the machine cannot host a lab (not root,
// no /dev/net/tun); CI runs as root.
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "netlab.hpp"

namespace barrage::netlab {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

sockaddr_in address(const std::string& ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

bool lab_exists(const std::string& netns, const std::string& ifname) {
  return access(("/var/run/netns/" + netns).c_str(), F_OK) == 0 || if_nametoindex(ifname.c_str()) != 0;
}

#define REQUIRE_LAB()                                             \
  do {                                                            \
    const std::string why = NetLab::unavailable();                \
    if (!why.empty()) GTEST_SKIP() << "no network lab: " << why;  \
  } while (0)

std::unique_ptr<NetLab> make_lab(Impairment link, uint64_t seed = 1) {
  std::string err;
  auto lab = NetLab::create({.link = link, .seed = seed}, &err);
  EXPECT_TRUE(lab) << err;
  return lab;
}

// A UDP socket in the lab's namespace on peer_address():9; echoes (or only
// counts) every datagram on its own thread until destroyed.
class UdpPeer {
 public:
  UdpPeer(const NetLab& lab, bool echo) : echo_(echo) {
    NetLab::Inside in(lab);
    EXPECT_TRUE(in.ok());
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const int big = 8 << 20;
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
    sockaddr_in a = address(lab.peer_address(), 9);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
    thread_ = std::thread([this] { run(); });
  }
  ~UdpPeer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  int received() const { return received_; }

 private:
  void run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      char buf[2048];
      sockaddr_in from{};
      socklen_t len = sizeof from;
      const ssize_t n = recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 0) continue;
      ++received_;
      if (echo_) sendto(fd_, buf, size_t(n), 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  }
  bool echo_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> received_{0};
  std::thread thread_;
};

// A UDP client in the caller's namespace towards the UdpPeer.
class UdpClient {
 public:
  explicit UdpClient(const NetLab& lab) {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = address(lab.peer_address(), 9);
    EXPECT_EQ(connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  }
  ~UdpClient() { close(fd_); }
  void send(uint32_t seq) { (void)!::send(fd_, &seq, sizeof seq, 0); }
  // Sends one datagram and waits for its echo: the RTT in ms, or -1.
  double ping(uint32_t seq, milliseconds limit) {
    const auto t0 = Clock::now();
    send(seq);
    for (;;) {
      const int left = int(limit.count() - ms_since(t0));
      if (left <= 0) return -1;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, left) <= 0) continue;
      uint32_t got = 0;
      if (recv(fd_, &got, sizeof got, 0) == sizeof got && got == seq) return ms_since(t0);
    }
  }

 private:
  int fd_ = -1;
};

TEST(NetLab, RoundTripTimeFollowsTheDelayAndItsChanges) {
  REQUIRE_LAB();
  auto lab = make_lab({.delay_ms = 20});
  ASSERT_TRUE(lab);
  UdpPeer echo(*lab, true);
  UdpClient client(*lab);
  auto sample = [&](int n, uint32_t base) {
    std::vector<double> rtt;
    for (int i = 0; i < n; ++i) {
      const double r = client.ping(base + uint32_t(i), milliseconds(1000));
      EXPECT_GE(r, 0) << "echo " << i << " lost on a lossless link";
      if (r >= 0) rtt.push_back(r);
    }
    std::sort(rtt.begin(), rtt.end());
    return rtt;
  };
  std::vector<double> rtt = sample(30, 0);
  ASSERT_FALSE(rtt.empty());
  // Never early; the median within 5 ms of 2 x 20 ms on a loaded 2-core box.
  EXPECT_GE(rtt.front(), 40.0);
  EXPECT_LE(rtt[rtt.size() / 2], 45.0);
  std::printf("netlab: RTT at 20 ms one way: min %.2f median %.2f max %.2f ms\n", rtt.front(),
              rtt[rtt.size() / 2], rtt.back());
  ASSERT_TRUE(lab->set_delay_ms(5));
  rtt = sample(30, 1000);
  ASSERT_FALSE(rtt.empty());
  EXPECT_GE(rtt.front(), 10.0);
  EXPECT_LE(rtt[rtt.size() / 2], 15.0);
}

TEST(NetLab, LossIsCloseToTheSettingAndCounted) {
  REQUIRE_LAB();
  auto lab = make_lab({.delay_ms = 1, .loss = 0.2}, 42);
  ASSERT_TRUE(lab);
  UdpPeer sink(*lab, false);
  UdpClient client(*lab);
  constexpr int kSent = 3000;
  for (int i = 0; i < kSent; ++i) {
    client.send(uint32_t(i));
    if (i % 100 == 99) std::this_thread::sleep_for(milliseconds(2));  // no burst beyond socket buffers
  }
  LabCounters c{};
  const auto until = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < until) {
    ASSERT_TRUE(lab->counters(&c));
    if (c.to_ns.passed + c.to_ns.lost >= kSent && sink.received() >= int(c.to_ns.passed)) break;
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_EQ(c.to_ns.passed + c.to_ns.lost, uint64_t(kSent));
  EXPECT_EQ(uint64_t(sink.received()), c.to_ns.passed);
  // 0.2 +- 0.025 is 3.4 standard deviations over 3,000 packets.
  EXPECT_NEAR(double(c.to_ns.lost) / kSent, 0.2, 0.025);
  std::printf("netlab: loss 0.2: %llu of %d lost (%.3f)\n", static_cast<unsigned long long>(c.to_ns.lost), kSent,
              double(c.to_ns.lost) / kSent);
}

TEST(NetLab, LinkDownDropsEverythingThenRecovers) {
  REQUIRE_LAB();
  auto lab = make_lab({.delay_ms = 2});
  ASSERT_TRUE(lab);
  UdpPeer echo(*lab, true);
  UdpClient client(*lab);
  ASSERT_GE(client.ping(1, milliseconds(1000)), 0);
  const auto down_at = Clock::now();
  ASSERT_TRUE(lab->link_down(800));
  int answered_while_down = 0;
  uint32_t seq = 100;
  while (ms_since(down_at) < 650)
    if (client.ping(seq++, milliseconds(50)) >= 0) ++answered_while_down;
  EXPECT_EQ(answered_while_down, 0);
  // Back after the 800 ms: the first echo sent after that comes back.
  std::this_thread::sleep_for(milliseconds(200));
  double back = -1;
  for (int i = 0; i < 10 && back < 0; ++i) back = client.ping(1000 + uint32_t(i), milliseconds(200));
  EXPECT_GE(back, 0) << "link did not recover";
  EXPECT_GE(ms_since(down_at), 800);
  LabCounters c{};
  ASSERT_TRUE(lab->counters(&c));
  EXPECT_GT(c.to_ns.down, 5u);
}

TEST(NetLab, RateCapBoundsTcpThroughput) {
  REQUIRE_LAB();
  constexpr uint64_t kRate = 2'000'000;  // bit/s
  constexpr size_t kBytes = 400'000;     // 1.6 s at the cap, payload alone
  auto lab = make_lab({.delay_ms = 5, .rate_bps = kRate});
  ASSERT_TRUE(lab);
  int listener;
  {
    NetLab::Inside in(*lab);
    ASSERT_TRUE(in.ok());
    listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  }
  sockaddr_in a = address(lab->peer_address(), 5001);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  std::atomic<size_t> got{0};
  std::thread sink([&] {
    const int c = accept(listener, nullptr, nullptr);
    char buf[65536];
    for (ssize_t n; (n = read(c, buf, sizeof buf)) > 0;) got += size_t(n);
    close(c);
  });
  const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const auto t0 = Clock::now();
  std::vector<char> data(kBytes, 'x');
  size_t sent = 0;
  while (sent < kBytes) {
    const ssize_t n = write(s, data.data() + sent, kBytes - sent);
    ASSERT_GT(n, 0);
    sent += size_t(n);
  }
  shutdown(s, SHUT_WR);
  char byte;
  EXPECT_EQ(read(s, &byte, 1), 0);  // the sink closes after reading everything
  const double elapsed = ms_since(t0);
  sink.join();
  close(s);
  close(listener);
  EXPECT_EQ(got.load(), kBytes);
  const double bps = double(kBytes) * 8 / (elapsed / 1000);
  std::printf("netlab: rate cap %llu bit/s: TCP payload %.0f bit/s (%.0f ms)\n",
              static_cast<unsigned long long>(kRate), bps, elapsed);
  EXPECT_LE(bps, double(kRate));        // headers ride on the wire too
  EXPECT_GE(bps, 0.5 * double(kRate));  // and the cap is a cap, not a stall
}

TEST(NetLab, ServerInsideAnswersAndEverythingIsRemoved) {
  REQUIRE_LAB();
  std::string netns, ifname;
  pid_t server = -1;
  {
    auto lab = make_lab({.delay_ms = 3});
    ASSERT_TRUE(lab);
    netns = lab->netns();
    ifname = lab->local_interface();
    EXPECT_TRUE(lab_exists(netns, ifname));
    int out[2];
    ASSERT_EQ(pipe2(out, O_CLOEXEC), 0);
    std::string err;
    server = lab->spawn({BARRAGE_MOCKSERVER, "--plain", "--host", lab->peer_address(), "--port", "8080"}, &err,
                        out[1]);
    close(out[1]);
    ASSERT_GT(server, 0) << err;
    char line[256] = {};
    pollfd p{out[0], POLLIN, 0};
    ASSERT_GT(poll(&p, 1, 10000), 0) << "mock server did not start";
    ASSERT_GT(read(out[0], line, sizeof line - 1), 0);
    close(out[0]);
    EXPECT_NE(std::strstr(line, "listening on http://"), nullptr) << line;
    const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = address(lab->peer_address(), 8080);
    ASSERT_EQ(connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
    const char req[] = "GET /health HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n";
    ASSERT_EQ(write(s, req, sizeof req - 1), ssize_t(sizeof req - 1));
    std::string answer;
    char buf[1024];
    for (ssize_t n; (n = read(s, buf, sizeof buf)) > 0;) answer.append(buf, size_t(n));
    close(s);
    EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
    const auto inside = pids_in_netns(netns);
    EXPECT_EQ(std::count(inside.begin(), inside.end(), lab->delay_line_pid()), 1);
  }
  EXPECT_FALSE(lab_exists(netns, ifname));
  EXPECT_NE(kill(server, 0), 0) << "server still running";
}

TEST(NetLab, KilledOwnerLeavesNothingBehind) {
  REQUIRE_LAB();
  int report[2];
  ASSERT_EQ(pipe(report), 0);
  const pid_t owner = fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {
    close(report[0]);
    std::string err;
    auto lab = NetLab::create({.link = {.delay_ms = 1}}, &err);
    if (!lab) _exit(1);
    const pid_t sleeper = lab->spawn({"sleep", "60"}, &err);
    const std::string msg = lab->netns() + " " + lab->local_interface() + " " + std::to_string(sleeper) + "\n";
    (void)!write(report[1], msg.data(), msg.size());
    raise(SIGKILL);  // no destructor runs
  }
  close(report[1]);
  char buf[256] = {};
  ssize_t n = 0;
  for (ssize_t k; (k = read(report[0], buf + n, sizeof buf - 1 - size_t(n))) > 0;) n += k;
  close(report[0]);
  int status = 0;
  waitpid(owner, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the owner could not make its lab";
  char netns[64] = {}, ifname[32] = {};
  int sleeper = 0;
  ASSERT_EQ(std::sscanf(buf, "%63s %31s %d", netns, ifname, &sleeper), 3) << buf;
  const auto until = Clock::now() + std::chrono::seconds(10);
  while ((lab_exists(netns, ifname) || kill(sleeper, 0) == 0) && Clock::now() < until)
    std::this_thread::sleep_for(milliseconds(20));
  EXPECT_FALSE(lab_exists(netns, ifname)) << netns << " or " << ifname << " still there";
  EXPECT_NE(kill(sleeper, 0), 0) << "process in the namespace still running";
}

}  // namespace
}  // namespace barrage::netlab
