// Unit tests for engine/loop backends: connect, send and receive completions,
// end-of-stream and reset reporting, close() with operations in flight,
// wake(), wait() timeouts, poll_fd() for embedding, readiness watches of
// caller-owned fds, and many sockets at once.
// Every test runs on both backends (io_uring and epoll) against plain
// loopback peers the test creates itself, so a difference in observable
// behaviour between the two shows up as one failing parameter.
#include "loop/backend.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace barrage {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int64_t kMs = 1000000;  // nanoseconds per millisecond
constexpr size_t kMiB = size_t(1) << 20;

// ---------------------------------------------------------------------------
// Helpers: file descriptors, a loopback listener, deterministic payloads.

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    reset(std::exchange(o.fd_, -1));
    return *this;
  }
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// A TCP listener on 127.0.0.1 with a kernel-chosen port.
class Listener {
 public:
  explicit Listener(int backlog = 1024) {
    fd_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    addr_.sin_family = AF_INET;
    addr_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr_.sin_port = 0;
    int one = 1;
    ::setsockopt(fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr_), sizeof addr_) != 0 ||
        ::listen(fd_.get(), backlog) != 0) {
      ADD_FAILURE() << "listener: " << std::strerror(errno);
      return;
    }
    socklen_t len = sizeof addr_;
    ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr_), &len);
  }

  const sockaddr* addr() const { return reinterpret_cast<const sockaddr*>(&addr_); }
  socklen_t addr_len() const { return sizeof addr_; }
  int fd() const { return fd_.get(); }

  // The next queued connection (blocking fd), or an invalid fd after timeout.
  UniqueFd accept(std::chrono::milliseconds timeout = 2000ms) const {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, int(timeout.count())) != 1) return UniqueFd();
    return UniqueFd(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  }

 private:
  UniqueFd fd_;
  sockaddr_in addr_{};
};

// An address nobody listens on: bound once to learn a free port, then closed.
sockaddr_in closed_port_address() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return a;
}

// Pseudo-random bytes: a lost, repeated or reordered 4 KiB buffer cannot
// go unnoticed the way it could with a short repeating pattern.
std::string payload(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint32_t v = rng();
    std::memcpy(&s[i], &v, 4);
  }
  for (; i < n; ++i) s[i] = char(rng());
  return s;
}

// Describes where two big strings first differ, instead of printing them.
std::string mismatch(const std::string& got, const std::string& want) {
  size_t n = std::min(got.size(), want.size());
  size_t i = 0;
  while (i < n && got[i] == want[i]) ++i;
  return "got " + std::to_string(got.size()) + " bytes, want " + std::to_string(want.size()) +
         ", first difference at offset " + std::to_string(i);
}

void write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    ASSERT_GT(w, 0) << std::strerror(errno);
    p += w;
    n -= size_t(w);
  }
}
void write_all(int fd, const std::string& s) { write_all(fd, s.data(), s.size()); }

// Resets the connection instead of closing it gracefully.
void close_with_reset(UniqueFd& fd) {
  linger lg{1, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  fd.reset();
}

// Waits until everything written to fd has left its send queue, so a
// following RST cannot overtake (and discard) the data.
bool wait_send_queue_empty(int fd, std::chrono::milliseconds limit = 2000ms) {
  auto deadline = Clock::now() + limit;
  for (;;) {
    int queued = 0;
    if (::ioctl(fd, SIOCOUTQ, &queued) != 0) return false;
    if (queued == 0) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
}

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// Aborts the binary if one test hangs (a wait(-1) nobody wakes, say), naming
// the test, instead of sitting silent until meson's limit.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit)
      : thread_([this, limit] {
          std::unique_lock<std::mutex> lk(mu_);
          if (cv_.wait_for(lk, limit, [this] { return done_; })) return;
          const auto* t = ::testing::UnitTest::GetInstance()->current_test_info();
          std::fprintf(stderr, "\nwatchdog: %s.%s did not finish in %llds\n",
                       t ? t->test_suite_name() : "?", t ? t->name() : "?",
                       static_cast<long long>(limit.count()));
          std::abort();
        }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

// ---------------------------------------------------------------------------
// A handler that records every completion and checks the contract as it goes.

struct Recorder final : SocketHandler {
  Socket* sock = nullptr;
  std::vector<int> connected;
  std::vector<ssize_t> sent;
  std::string data;
  int receives = 0;     // on_received calls with n > 0
  int eofs = 0;         // on_received(…, 0)
  std::vector<ssize_t> errors;  // on_received(…, n < 0)
  bool eof_data_null = true;
  bool data_after_end = false;
  bool closed = false;  // set by the test as soon as Backend::close returns
  int after_close = 0;  // callbacks that arrived anyway

  std::function<void(Recorder&)> connect_hook;
  std::function<void(Recorder&, ssize_t)> receive_hook;
  std::function<void(Recorder&, ssize_t)> sent_hook;

  void on_connected(int err) noexcept override {
    check("on_connected");
    connected.push_back(err);
    if (connect_hook) connect_hook(*this);
  }
  void on_sent(ssize_t res) noexcept override {
    check("on_sent");
    sent.push_back(res);
    if (sent_hook) sent_hook(*this, res);
  }
  void on_received(const char* p, ssize_t n) noexcept override {
    check("on_received");
    if (n > 0) {
      if (ended()) data_after_end = true;
      ++receives;
      data.append(p, size_t(n));
    } else if (n == 0) {
      ++eofs;
      if (p != nullptr) eof_data_null = false;
    } else {
      errors.push_back(n);
    }
    if (receive_hook) receive_hook(*this, n);
  }

  int ends() const { return eofs + int(errors.size()); }
  bool ended() const { return ends() > 0; }
  int callbacks() const {
    return int(connected.size() + sent.size() + errors.size()) + receives + eofs;
  }

 private:
  void check(const char* what) {
    if (!closed) return;
    ++after_close;
    ADD_FAILURE() << what << " called after Backend::close() returned";
  }
};

// ---------------------------------------------------------------------------
// The fixture: one fresh backend of the parameter's kind per test.

class BackendTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  void SetUp() override {
    BackendChoice c = make_backend(GetParam());
    if (!c.backend) {
      if (GetParam() == BackendKind::io_uring) GTEST_SKIP() << c.why;
      FAIL() << c.why;
    }
    ASSERT_EQ(c.backend->kind(), GetParam()) << c.why;
    backend_ = std::move(c.backend);
  }

  Backend& b() { return *backend_; }

  // A buffer that outlives the backend, for sends still in flight at close().
  const std::string& keep(std::string s) { return kept_.emplace_back(std::move(s)); }

  // Runs wait(10 ms) until pred() or the limit; every wait must succeed.
  template <class Pred>
  bool run_until(Pred pred, std::chrono::milliseconds limit = 5000ms) {
    auto deadline = Clock::now() + limit;
    while (!pred()) {
      if (Clock::now() > deadline) return false;
      int rc = backend_->wait(10 * kMs);
      EXPECT_GE(rc, 0) << "wait() failed: " << std::strerror(-rc);
      if (rc < 0) return false;
    }
    return true;
  }

  // Keeps the loop turning for a while, for "nothing more happens" checks.
  void settle(std::chrono::milliseconds d = 100ms) {
    auto deadline = Clock::now() + d;
    while (Clock::now() < deadline) {
      int rc = backend_->wait(5 * kMs);
      ASSERT_GE(rc, 0) << std::strerror(-rc);
    }
  }

  // Drives the backend only the way an embedding host can: wait(0) when
  // has_pending(), otherwise block in poll(poll_fd()) and call wait(0) once it
  // is readable. False when poll_fd() stayed quiet for `quiet` although
  // pred() was not yet true: the host would hang there.
  template <class Pred>
  bool run_embedded(Pred pred, std::chrono::milliseconds quiet = 2000ms) {
    int pfd = backend_->poll_fd();
    EXPECT_GE(pfd, 0);
    if (pfd < 0) return false;
    while (!pred()) {
      if (!backend_->has_pending()) {
        pollfd p{pfd, POLLIN, 0};
        int r = ::poll(&p, 1, int(quiet.count()));
        if (r == 0) return false;
        EXPECT_EQ(r, 1);
        EXPECT_TRUE(p.revents & POLLIN);
      }
      int rc = backend_->wait(0);
      EXPECT_GE(rc, 0) << std::strerror(-rc);
      if (rc < 0) return false;
    }
    return true;
  }

  Socket* start_connect(Recorder& r, const sockaddr* addr, socklen_t len) {
    int err = 0;
    r.sock = backend_->connect(addr, len, &r, &err);
    EXPECT_NE(r.sock, nullptr) << "connect: " << std::strerror(err);
    return r.sock;
  }

  // Connects r to the listener and returns the accepted peer.
  UniqueFd connect_pair(Recorder& r, const Listener& l) {
    if (!start_connect(r, l.addr(), l.addr_len())) return UniqueFd();
    EXPECT_TRUE(run_until([&] { return !r.connected.empty(); })) << "no on_connected";
    EXPECT_EQ(r.connected, std::vector<int>{0});
    UniqueFd peer = l.accept();
    EXPECT_TRUE(peer.valid()) << "nothing to accept";
    return peer;
  }

  void close(Recorder& r, bool abort) {
    backend_->close(r.sock, abort);
    r.closed = true;
  }

  // Reads from a (blocking) peer fd without blocking the loop: the backend
  // keeps turning so that io_uring submits what it queued.
  std::string peer_read(int fd, size_t want, std::chrono::milliseconds limit = 5000ms) {
    std::string got;
    char buf[65536];
    run_until(
        [&] {
          for (;;) {
            ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n <= 0) break;
            got.append(buf, size_t(n));
          }
          return got.size() >= want;
        },
        limit);
    return got;
  }

  // What the peer finally sees after the backend let go of the connection:
  // 0 for EOF, an errno for an error, -1 if it saw neither within the limit.
  // Data still queued is read and discarded on the way.
  int peer_outcome(int fd, std::chrono::milliseconds limit = 3000ms) {
    int outcome = -1;
    char buf[65536];
    run_until(
        [&] {
          for (;;) {
            ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) continue;
            if (n == 0) {
              outcome = 0;
              return true;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
            outcome = errno;
            return true;
          }
        },
        limit);
    return outcome;
  }

  std::deque<std::string> kept_;       // declared first: outlives the backend
  Watchdog watchdog_{std::chrono::seconds(45)};
  std::unique_ptr<Backend> backend_;
};

std::string kind_name(const ::testing::TestParamInfo<BackendKind>& info) {
  return backend_name(info.param);
}

// ---------------------------------------------------------------------------
// Connect, send, receive.

TEST_P(BackendTest, ConnectReportsSuccessAndSendCompletesWithFullLength) {
  Listener l;
  Recorder r;
  UniqueFd peer = connect_pair(r, l);
  ASSERT_TRUE(peer.valid());

  static const char kHello[] = "hello, peer";
  const size_t len = sizeof kHello - 1;
  b().send(r.sock, kHello, len);
  ASSERT_TRUE(run_until([&] { return !r.sent.empty(); }));
  EXPECT_EQ(r.sent, std::vector<ssize_t>{ssize_t(len)});
  EXPECT_EQ(peer_read(peer.get(), len), std::string(kHello, len));

  // A second send on the same socket after the first completed.
  static const char kMore[] = "and more";
  b().send(r.sock, kMore, sizeof kMore - 1);
  ASSERT_TRUE(run_until([&] { return r.sent.size() == 2; }));
  EXPECT_EQ(r.sent[1], ssize_t(sizeof kMore - 1));
  EXPECT_EQ(peer_read(peer.get(), sizeof kMore - 1), "and more");

  write_all(peer.get(), "hello, client");
  ASSERT_TRUE(run_until([&] { return r.data.size() >= 13; }));
  EXPECT_EQ(r.data, "hello, client");
  EXPECT_FALSE(r.ended());
  close(r, false);
  settle(20ms);
}

// The peer writes 1 MiB in odd-sized chunks; every byte must arrive once,
// in order. Catches lost or duplicated buffers in io_uring's buffer-ring
// recycling and in epoll's short-read logic.
TEST_P(BackendTest, ReceivesOneMiBInOrderAndComplete) {
  Listener l;
  Recorder r;
  UniqueFd peer = connect_pair(r, l);
  ASSERT_TRUE(peer.valid());

  const std::string want = payload(kMiB, 1);
  std::thread writer([&] {
    std::mt19937 rng(7);
    size_t off = 0;
    while (off < want.size()) {
      size_t n = std::min(want.size() - off, size_t(1 + rng() % 70000));
      write_all(peer.get(), want.data() + off, n);
      off += n;
    }
    ::shutdown(peer.get(), SHUT_WR);
  });
  bool done = run_until([&] { return r.ended(); }, 20000ms);
  writer.join();
  ASSERT_TRUE(done) << "no end of stream; " << mismatch(r.data, want);
  EXPECT_TRUE(r.data == want) << mismatch(r.data, want);
  EXPECT_EQ(r.eofs, 1);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_FALSE(r.data_after_end);
}

// 16 streams of 2 MiB each (32 MiB, four times io_uring's 8 MiB buffer ring)
// with pauses in which the sockets fill up, so one loop turn finds more data
// than there are free buffers (the ENOBUFS re-arm path). No stream may lose,
// repeat or borrow bytes.
TEST_P(BackendTest, ConcurrentStreamsSurviveBufferRingExhaustion) {
  constexpr int kStreams = 16;
  constexpr size_t kPerStream = 2 * kMiB;
  Listener l;
  std::vector<Recorder> rs(kStreams);
  std::vector<UniqueFd> peers;
  std::vector<std::string> want;
  for (int i = 0; i < kStreams; ++i) {
    peers.push_back(connect_pair(rs[i], l));
    ASSERT_TRUE(peers.back().valid());
    want.push_back(payload(kPerStream, 100 + i));
  }
  std::thread writer([&] {
    for (size_t off = 0; off < kPerStream;) {
      size_t n = std::min(kPerStream - off, size_t(37000));
      for (int i = 0; i < kStreams; ++i) write_all(peers[i].get(), want[i].data() + off, n);
      off += n;
    }
    for (auto& p : peers) ::shutdown(p.get(), SHUT_WR);
  });
  int turns = 0;
  bool done = run_until(
      [&] {
        if (++turns % 8 == 0) std::this_thread::sleep_for(30ms);  // let the sockets fill
        for (auto& r : rs)
          if (!r.ended()) return false;
        return true;
      },
      30000ms);
  writer.join();
  ASSERT_TRUE(done);
  for (int i = 0; i < kStreams; ++i) {
    EXPECT_TRUE(rs[i].data == want[i]) << "stream " << i << ": " << mismatch(rs[i].data, want[i]);
    EXPECT_EQ(rs[i].eofs, 1) << "stream " << i;
    EXPECT_TRUE(rs[i].errors.empty()) << "stream " << i;
  }
}

// A send far larger than the socket buffers, to a peer that starts reading
// late: partial writes are continued and on_sent reports the whole length once.
TEST_P(BackendTest, LargeSendIsContinuedUntilComplete) {
  Listener l;
  Recorder r;
  UniqueFd peer = connect_pair(r, l);
  ASSERT_TRUE(peer.valid());

  const std::string& out = keep(payload(16 * kMiB, 2));
  b().send(r.sock, out.data(), out.size());
  std::string got;
  std::thread reader([&] {
    std::this_thread::sleep_for(200ms);
    std::vector<char> buf(100000);
    while (got.size() < out.size()) {
      ssize_t n = ::recv(peer.get(), buf.data(), buf.size(), 0);
      if (n <= 0) break;
      got.append(buf.data(), size_t(n));
    }
  });
  bool done = run_until([&] { return !r.sent.empty(); }, 20000ms);
  if (!done) ::shutdown(peer.get(), SHUT_RDWR);  // unblock the reader
  reader.join();
  ASSERT_TRUE(done);
  EXPECT_EQ(r.sent, std::vector<ssize_t>{ssize_t(out.size())});
  EXPECT_TRUE(got == out) << mismatch(got, out);
}

// ---------------------------------------------------------------------------
// End of stream and resets.

// The peer's last bytes and its FIN arrive before the loop looks: the bytes
// are delivered, then end of stream exactly once.
TEST_P(BackendTest, PeerCloseReportsEofExactlyOnce) {
  Listener l;
  Recorder r;
  UniqueFd peer = connect_pair(r, l);
  ASSERT_TRUE(peer.valid());
  write_all(peer.get(), "last words");
  peer.reset();
  ASSERT_TRUE(run_until([&] { return r.ended(); }, 2000ms)) << "EOF never reported";
  settle(100ms);
  EXPECT_EQ(r.data, "last words");
  EXPECT_EQ(r.eofs, 1);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_FALSE(r.data_after_end);
}

// End of stream is on_received(nullptr, 0) on both backends, as io_uring's
// final recv completion gives it. Regression: epoll passed its read buffer.
TEST_P(BackendTest, EofIsReportedWithNullData) {
  Listener l;
  Recorder r;
  UniqueFd peer = connect_pair(r, l);
  ASSERT_TRUE(peer.valid());
  ::shutdown(peer.get(), SHUT_WR);
  ASSERT_TRUE(run_until([&] { return r.ended(); }, 2000ms));
  ASSERT_EQ(r.eofs, 1);
  EXPECT_TRUE(r.eof_data_null) << "on_received(p, 0) with p != nullptr";
}

// After end of stream the socket stays open (the owner may still be sending);
// when the gone peer answers that send with a RST, no second end-of-stream
// (or error) may be reported: the receive side already ended. Regression:
// epoll drained the socket again on the RST's edge and reported EOF twice.
TEST_P(BackendTest, EofIsNotRepeatedWhenTheClosedPeerLaterResets) {
  Listener l;
  Recorder r;
  UniqueFd peer = connect_pair(r, l);
  ASSERT_TRUE(peer.valid());
  peer.reset();  // full close: a later segment from us draws a RST
  ASSERT_TRUE(run_until([&] { return r.ended(); }, 2000ms));
  ASSERT_EQ(r.eofs, 1);

  static const char kX[] = "x";
  b().send(r.sock, kX, 1);
  ASSERT_TRUE(run_until([&] { return r.sent.size() == 1; }, 2000ms));
  settle(200ms);
  EXPECT_EQ(r.ends(), 1) << "eofs=" << r.eofs << " errors=" << r.errors.size();
  EXPECT_EQ(r.eofs, 1);
}

// The peer resets an idle connection: one terminal on_received, -ECONNRESET
// (or 0, which some kernels report for a reset without pending error).
TEST_P(BackendTest, PeerResetReportsConnResetOrEof) {
  Listener l;
  Recorder r;
  UniqueFd peer = connect_pair(r, l);
  ASSERT_TRUE(peer.valid());
  settle(20ms);  // the receive is armed before the reset
  close_with_reset(peer);
  ASSERT_TRUE(run_until([&] { return r.ended(); }, 2000ms)) << "reset never reported";
  settle(100ms);
  EXPECT_EQ(r.ends(), 1);
  if (!r.errors.empty()) {
    EXPECT_EQ(r.errors[0], -ECONNRESET);
  }
  EXPECT_TRUE(r.data.empty());
}

// Regression: the peer writes a few bytes and resets at once, so both reach
// the socket before the loop looks. epoll (edge-triggered) used to stop at
// the short read of the data and never report the reset: the connection hung
// forever. Both backends must deliver the bytes, then the error or EOF.
TEST_P(BackendTest, DataAndRstArrivingTogetherAreBothDeliveredOnEpoll) {
  Listener l;
  for (size_t size : {size_t(7), size_t(4096), size_t(65536)}) {
    SCOPED_TRACE("payload " + std::to_string(size));
    Recorder r;
    UniqueFd peer = connect_pair(r, l);
    ASSERT_TRUE(peer.valid());
    settle(20ms);
    const std::string want = payload(size, uint32_t(size));
    write_all(peer.get(), want);
    ASSERT_TRUE(wait_send_queue_empty(peer.get()));
    close_with_reset(peer);
    ASSERT_TRUE(run_until([&] { return r.ended(); }, 2000ms))
        << "the reset was never reported; got " << r.data.size() << " bytes";
    settle(50ms);
    EXPECT_TRUE(r.data == want) << mismatch(r.data, want);
    EXPECT_FALSE(r.data_after_end);
    EXPECT_EQ(r.ends(), 1);
    if (!r.errors.empty()) {
    EXPECT_EQ(r.errors[0], -ECONNRESET);
  }
    close(r, false);
  }
}

TEST_P(BackendTest, ConnectToClosedPortReportsRefused) {
  sockaddr_in addr = closed_port_address();
  Recorder r;
  ASSERT_NE(start_connect(r, reinterpret_cast<sockaddr*>(&addr), sizeof addr), nullptr);
  ASSERT_TRUE(run_until([&] { return !r.connected.empty(); }, 2000ms));
  settle(50ms);
  EXPECT_EQ(r.connected, std::vector<int>{ECONNREFUSED});
  EXPECT_EQ(r.receives + r.ends(), 0) << "no receive completions for a failed connect";
  close(r, false);
  settle(20ms);
}

// "A failed call produces nothing later": connect() returning nullptr with
// EMFILE must not be followed by any callback, and the backend recovers.
TEST_P(BackendTest, ConnectOutOfDescriptorsFailsWithEmfileAndNoCallback) {
  Listener l;
  settle(5ms);  // io_uring sets up its ring on the first wait
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
  int highest = ::dup(l.fd());
  ASSERT_GE(highest, 0);
  ::close(highest);
  if (highest > 200) GTEST_SKIP() << "too many descriptors open already";
  rlimit low = old;
  low.rlim_cur = 256;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  std::vector<UniqueFd> filler;
  for (int fd; (fd = ::dup(l.fd())) >= 0;) filler.emplace_back(fd);
  ASSERT_EQ(errno, EMFILE);

  Recorder r;
  int err = 0;
  Socket* s = b().connect(l.addr(), l.addr_len(), &r, &err);
  filler.clear();
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &old), 0);
  EXPECT_EQ(s, nullptr);
  EXPECT_EQ(err, EMFILE);
  settle(50ms);
  EXPECT_EQ(r.callbacks(), 0);

  Recorder ok;
  UniqueFd peer = connect_pair(ok, l);
  EXPECT_TRUE(peer.valid());
}

// ---------------------------------------------------------------------------
// close() with operations outstanding.

// A send that cannot finish (the peer does not read) and the armed receive
// are both in flight at close(). Nothing may be delivered afterwards, even
// when the peer then sends and closes; wait() keeps working; the socket is
// really released (the peer sees EOF or a reset; a reset for abort=true).
TEST_P(BackendTest, NoCallbackAfterCloseWithSendAndReceiveOutstanding) {
  Listener l;
  for (bool abort : {false, true}) {
    SCOPED_TRACE(abort ? "abort" : "graceful");
    Recorder r;
    UniqueFd peer = connect_pair(r, l);
    ASSERT_TRUE(peer.valid());
    const std::string& out = keep(payload(32 * kMiB, 3));
    b().send(r.sock, out.data(), out.size());
    settle(100ms);
    ASSERT_TRUE(r.sent.empty()) << "the send was expected to be stuck";

    close(r, abort);
    // The peer sends and closes its side. With abort the reset may already
    // be there, and then this send is what reports it.
    int outcome = -1;
    if (::send(peer.get(), "too late", 8, MSG_NOSIGNAL) < 0) outcome = errno;
    ::shutdown(peer.get(), SHUT_WR);
    settle(300ms);
    EXPECT_EQ(r.after_close, 0);

    if (outcome < 0) outcome = peer_outcome(peer.get());
    if (abort)
      EXPECT_EQ(outcome, ECONNRESET) << "the peer should see a reset";
    else
      EXPECT_TRUE(outcome == 0 || outcome == ECONNRESET) << "peer outcome " << outcome;
  }
  // The backend still serves new connections.
  Recorder fresh;
  UniqueFd peer = connect_pair(fresh, l);
  ASSERT_TRUE(peer.valid());
  static const char kPing[] = "ping";
  b().send(fresh.sock, kPing, 4);
  ASSERT_TRUE(run_until([&] { return fresh.sent.size() == 1; }));
  EXPECT_EQ(peer_read(peer.get(), 4), "ping");
}

TEST_P(BackendTest, AbortiveCloseMakesPeerSeeReset) {
  Listener l;
  Recorder r;
  UniqueFd peer = connect_pair(r, l);
  ASSERT_TRUE(peer.valid());
  settle(20ms);
  close(r, true);
  EXPECT_EQ(peer_outcome(peer.get()), ECONNRESET);
  EXPECT_EQ(r.after_close, 0);
}

TEST_P(BackendTest, GracefulCloseMakesPeerSeeEof) {
  Listener l;
  Recorder r;
  UniqueFd peer = connect_pair(r, l);
  ASSERT_TRUE(peer.valid());
  settle(20ms);
  close(r, false);
  EXPECT_EQ(peer_outcome(peer.get()), 0);
  EXPECT_EQ(r.after_close, 0);
}

// close() right after connect(), before the loop has even submitted it.
TEST_P(BackendTest, CloseBeforeConnectCompletesDeliversNothing) {
  Listener l;
  Recorder r;
  ASSERT_NE(start_connect(r, l.addr(), l.addr_len()), nullptr);
  close(r, false);
  settle(100ms);
  EXPECT_EQ(r.callbacks(), 0);
  // If the connection got as far as the listener, it must be let go.
  UniqueFd peer = l.accept(0ms);
  if (peer.valid()) {
    int outcome = peer_outcome(peer.get());
    EXPECT_TRUE(outcome == 0 || outcome == ECONNRESET) << "peer outcome " << outcome;
  }
}

// Handlers may close their own socket from inside any callback: from
// on_connected (io_uring has just queued the receive) and from on_sent.
TEST_P(BackendTest, CloseFromInsideCallbacksDeliversNothingMore) {
  Listener l;
  {
    SCOPED_TRACE("close in on_connected");
    Recorder r;
    r.connect_hook = [this](Recorder& self) { close(self, false); };
    ASSERT_NE(start_connect(r, l.addr(), l.addr_len()), nullptr);
    ASSERT_TRUE(run_until([&] { return r.closed; }, 2000ms));
    UniqueFd peer = l.accept();
    ASSERT_TRUE(peer.valid());
    write_all(peer.get(), "anyone there?");
    settle(100ms);
    EXPECT_EQ(r.callbacks(), 1);
    EXPECT_EQ(r.after_close, 0);
    int outcome = peer_outcome(peer.get());
    EXPECT_TRUE(outcome == 0 || outcome == ECONNRESET) << "peer outcome " << outcome;
  }
  {
    SCOPED_TRACE("close in on_sent");
    Recorder r;
    UniqueFd peer = connect_pair(r, l);
    ASSERT_TRUE(peer.valid());
    r.sent_hook = [this](Recorder& self, ssize_t) { close(self, false); };
    static const char kMsg[] = "bye";
    b().send(r.sock, kMsg, 3);
    ASSERT_TRUE(run_until([&] { return r.closed; }, 2000ms));
    EXPECT_EQ(r.sent, std::vector<ssize_t>{3});
    write_all(peer.get(), "late");
    settle(100ms);
    EXPECT_EQ(r.after_close, 0);
    EXPECT_EQ(peer_read(peer.get(), 3), "bye");
  }
}

// More operations in one turn than io_uring's submission queue holds (4096):
// the backend must flush early, not drop or fail any. Each connect goes to
// a closed port and must report ECONNREFUSED exactly once.
TEST_P(BackendTest, MoreConnectsInOneTurnThanTheSubmissionQueueHolds) {
  constexpr int kCount = 5000;
  sockaddr_in addr = closed_port_address();
  std::vector<Recorder> rs(kCount);
  for (int i = 0; i < kCount; ++i)
    ASSERT_NE(start_connect(rs[i], reinterpret_cast<sockaddr*>(&addr), sizeof addr), nullptr)
        << "connect " << i;
  auto all_done = [&] {
    for (auto& r : rs)
      if (r.connected.empty()) return false;
    return true;
  };
  EXPECT_TRUE(run_until(all_done, 20000ms));
  settle(50ms);
  int wrong = 0;
  for (int i = 0; i < kCount; ++i) {
    if (rs[i].connected == std::vector<int>{ECONNREFUSED} && rs[i].callbacks() == 1) continue;
    if (++wrong <= 3)
      ADD_FAILURE() << "socket " << i << ": " << rs[i].connected.size() << " on_connected, first "
                    << (rs[i].connected.empty() ? 0 : rs[i].connected[0]);
  }
  EXPECT_EQ(wrong, 0);
  for (auto& r : rs) close(r, false);
  settle(20ms);
}

// Data for two sockets is due in the same loop turn; whichever handler runs
// first closes the other socket, whose completion must then be dropped.
TEST_P(BackendTest, HandlerClosingAnotherSocketSuppressesItsCompletions) {
  Listener l;
  Recorder a, b2;
  UniqueFd pa = connect_pair(a, l);
  UniqueFd pb = connect_pair(b2, l);
  ASSERT_TRUE(pa.valid() && pb.valid());
  settle(20ms);
  auto close_other = [this](Recorder& other) {
    return [this, &other](Recorder& self, ssize_t) {
      if (!other.closed && !self.closed) close(other, false);
    };
  };
  a.receive_hook = close_other(b2);
  b2.receive_hook = close_other(a);
  write_all(pa.get(), "to a");
  write_all(pb.get(), "to b");
  ASSERT_TRUE(run_until([&] { return a.receives + b2.receives > 0; }, 2000ms));
  settle(100ms);
  EXPECT_EQ(a.after_close + b2.after_close, 0);
  EXPECT_EQ(int(a.closed) + int(b2.closed), 1);
  EXPECT_EQ(a.closed ? b2.data : a.data, a.closed ? "to b" : "to a");
}

// A handler sends (the send finishes at once, so its completion is queued
// for the next turn) and then closes its socket. The next connect() may get
// the same backend-internal socket object; the old, queued on_sent must not
// be delivered to the new connection's handler. Regression: epoll did.
TEST_P(BackendTest, CompletionQueuedBeforeCloseIsNotDeliveredToAReusedSocket) {
  Listener l;
  Recorder a;
  UniqueFd pa = connect_pair(a, l);
  ASSERT_TRUE(pa.valid());
  static const char kReply[] = "abc";
  a.receive_hook = [this](Recorder& self, ssize_t n) {
    if (n <= 0 || self.closed) return;
    b().send(self.sock, kReply, 3);
    close(self, false);
  };
  write_all(pa.get(), "x");
  ASSERT_TRUE(run_until([&] { return a.closed; }, 2000ms));

  Recorder fresh;  // connect() right after the turn that closed `a`
  ASSERT_NE(start_connect(fresh, l.addr(), l.addr_len()), nullptr);
  ASSERT_TRUE(run_until([&] { return !fresh.connected.empty(); }, 2000ms));
  settle(100ms);
  EXPECT_EQ(fresh.connected, std::vector<int>{0});
  EXPECT_TRUE(fresh.sent.empty()) << "on_sent(" << (fresh.sent.empty() ? 0 : fresh.sent[0])
                                  << ") delivered to a socket that never sent";
  EXPECT_EQ(a.after_close, 0);
}

// ---------------------------------------------------------------------------
// The dispatch budget: a wait() stops dispatching once it is spent and the
// next one goes on from there without blocking.

// kSockets connected sockets whose peers have each written one byte, already
// in the kernel (and, for io_uring, behind a multishot receive armed earlier).
struct ReadySockets {
  static constexpr int kSockets = 8;
  std::vector<Recorder> rs = std::vector<Recorder>(kSockets);
  std::vector<UniqueFd> peers;
  int received() const {
    int n = 0;
    for (const Recorder& r : rs) n += r.receives;
    return n;
  }
};

TEST_P(BackendTest, SpentBudgetLeavesTheRestForTheNextWaitWhichDoesNotBlock) {
  Listener l;
  ReadySockets s;
  for (Recorder& r : s.rs) s.peers.push_back(connect_pair(r, l));
  for (const UniqueFd& p : s.peers) ASSERT_TRUE(p.valid());
  settle(20ms);  // every receive armed
  for (const UniqueFd& p : s.peers) write_all(p.get(), "x");
  std::this_thread::sleep_for(50ms);  // all of it arrived

  // A budget of 0 is spent by the first completion: one per wait(), each
  // wait() returning at once, in as many calls as there are sockets.
  for (int i = 1; i <= ReadySockets::kSockets; ++i) {
    auto t0 = Clock::now();
    int rc = b().wait(5000 * kMs, 0);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    ASSERT_EQ(rc, 1) << "wait " << i;
    EXPECT_LT(ms, 1000) << "wait " << i << " blocked with completions left from the last";
    EXPECT_EQ(s.received(), i);
    EXPECT_EQ(b().has_pending(), i < ReadySockets::kSockets) << "after wait " << i;
  }
  for (const Recorder& r : s.rs) EXPECT_EQ(r.data, "x");

  // Without a budget one wait() takes everything that is ready.
  for (const UniqueFd& p : s.peers) write_all(p.get(), "y");
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(b().wait(5000 * kMs, -1), ReadySockets::kSockets);
  EXPECT_FALSE(b().has_pending());
  for (Recorder& r : s.rs) {
    EXPECT_EQ(r.data, "xy");
    close(r, false);
  }
  settle(20ms);
}

// The first completion dispatched closes every other socket; the budget
// stops there with their completions left. Sockets connected next reuse the
// closed ones' slots, to a listener whose queue is full, so they stay
// connecting: a left completion that reached them would report a connect
// that never happened (epoll reads SO_ERROR, 0, for any writable event).
TEST_P(BackendTest, CompletionsLeftByTheBudgetDoNotOutliveTheirSocket) {
  Listener l;
  ReadySockets s;
  for (Recorder& r : s.rs) s.peers.push_back(connect_pair(r, l));
  for (const UniqueFd& p : s.peers) ASSERT_TRUE(p.valid());
  settle(20ms);
  for (Recorder& r : s.rs) {
    r.receive_hook = [this, &s](Recorder& self, ssize_t n) {
      if (n <= 0) return;
      for (Recorder& other : s.rs)
        if (&other != &self && !other.closed) close(other, true);
    };
  }
  for (const UniqueFd& p : s.peers) write_all(p.get(), "x");
  std::this_thread::sleep_for(50ms);
  ASSERT_EQ(b().wait(5000 * kMs, 0), 1);
  ASSERT_EQ(s.received(), 1);

  // Backlog 0 holds one connection; the kernel drops later SYNs (and the
  // clients retry them for seconds), so those connects stay pending.
  Listener full(0);
  std::vector<UniqueFd> fillers;
  for (int i = 0; i < 4; ++i) {
    fillers.emplace_back(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    ::connect(fillers.back().get(), full.addr(), full.addr_len());
  }
  std::this_thread::sleep_for(20ms);
  std::vector<Recorder> fresh(ReadySockets::kSockets);
  for (Recorder& f : fresh) ASSERT_NE(start_connect(f, full.addr(), full.addr_len()), nullptr);
  settle(100ms);
  EXPECT_EQ(s.received(), 1);
  for (const Recorder& r : s.rs) EXPECT_EQ(r.after_close, 0);
  for (const Recorder& f : fresh)
    EXPECT_EQ(f.callbacks(), 0) << "a closed socket's completion reached the socket that reused its slot";
  for (Recorder& r : s.rs)
    if (!r.closed) close(r, false);
  for (Recorder& f : fresh) close(f, true);
  settle(20ms);
}

// ---------------------------------------------------------------------------
// wake() and wait() timeouts.

// Calls wake() once after `first` (unless zero), and again every 250 ms from
// `limit` on while the waiter has not returned, so that a lost wake-up fails
// on time instead of hanging. No wake() happens after done() returns.
class Waker {
 public:
  Waker(Backend& b, std::chrono::milliseconds first, std::chrono::milliseconds limit)
      : thread_([this, &b, first, limit] {
          std::unique_lock<std::mutex> lk(mu_);
          if (first.count() > 0) {
            if (cv_.wait_for(lk, first, [this] { return done_; })) return;
            b.wake();
          }
          if (cv_.wait_for(lk, limit, [this] { return done_; })) return;
          while (!cv_.wait_for(lk, 250ms, [this] { return done_; })) b.wake();
        }) {}
  ~Waker() { done(); }
  void done() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last
};

// Runs fn on a thread of its own. The timing tests use it: tearing down an
// io_uring ring (the previous test's backend) queues task work that can
// interrupt whatever the creating thread sleeps in next with EINTR, which
// would make a timed wait() of the following test return early.
template <class Fn>
void on_fresh_thread(Fn fn) {
  std::thread t(fn);
  t.join();
}

TEST_P(BackendTest, WakeFromAnotherThreadInterruptsWaitForever) {
  on_fresh_thread([&] {
    ASSERT_GE(b().wait(0), 0);
    for (int round = 0; round < 3; ++round) {
      SCOPED_TRACE("round " + std::to_string(round));
      Waker waker(b(), 100ms, 1500ms);
      auto t0 = Clock::now();
      int rc = b().wait(-1);
      double ms = ms_between(t0, Clock::now());
      waker.done();
      EXPECT_GE(rc, 0);
      EXPECT_LT(ms, 1000.0) << "wake() did not interrupt wait(-1) promptly";
      EXPECT_GE(ms, 90.0) << "wait(-1) returned before anyone woke it";
    }
    // Wake-ups are consumed: the next timed wait runs its full course.
    auto t0 = Clock::now();
    ASSERT_GE(b().wait(30 * kMs), 0);
    EXPECT_GE(ms_between(t0, Clock::now()), 29.0) << "a consumed wake-up fired again";
  });
}

TEST_P(BackendTest, WakeBeforeWaitIsNotLost) {
  on_fresh_thread([&] {
    for (int round = 0; round < 3; ++round) {
      SCOPED_TRACE("round " + std::to_string(round));
      b().wake();
      if (round == 2) b().wake();  // repeated wake-ups coalesce
      Waker safety(b(), 0ms, 1500ms);
      auto t0 = Clock::now();
      int rc = b().wait(-1);
      double ms = ms_between(t0, Clock::now());
      safety.done();
      EXPECT_GE(rc, 0);
      EXPECT_LT(ms, 200.0) << "a wake() before wait() was lost";
    }
    auto t0 = Clock::now();
    ASSERT_GE(b().wait(30 * kMs), 0);
    EXPECT_GE(ms_between(t0, Clock::now()), 29.0) << "a consumed wake-up fired again";
  });
}

TEST_P(BackendTest, WaitWithNothingToDoHonoursTimeout) {
  on_fresh_thread([&] {
    ASSERT_GE(b().wait(0), 0);  // io_uring: enable the ring first
    for (int64_t ms : {1, 5, 20, 100}) {
      SCOPED_TRACE("timeout " + std::to_string(ms) + " ms");
      auto t0 = Clock::now();
      int rc = b().wait(ms * kMs);
      double took = ms_between(t0, Clock::now());
      EXPECT_EQ(rc, 0);
      EXPECT_GE(took, double(ms) - 1.0) << "returned early";
      EXPECT_LE(took, double(ms) + 50.0) << "returned late";
    }
    auto t0 = Clock::now();
    EXPECT_EQ(b().wait(0), 0);
    EXPECT_LE(ms_between(t0, Clock::now()), 50.0) << "wait(0) blocked";
  });
}

// A signal that interrupts wait() is not an error: wait() returns >= 0 and
// the loop goes on (the host's own signals must not break the engine).
TEST_P(BackendTest, WaitInterruptedBySignalIsNotAnError) {
  struct sigaction sa {};
  sa.sa_handler = [](int) {};
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: the sleeping syscall fails with EINTR
  struct sigaction old {};
  ASSERT_EQ(::sigaction(SIGUSR1, &sa, &old), 0);
  ASSERT_GE(b().wait(0), 0);
  pthread_t self = ::pthread_self();
  std::thread killer([self] {
    std::this_thread::sleep_for(50ms);
    ::pthread_kill(self, SIGUSR1);
  });
  auto t0 = Clock::now();
  int rc = b().wait(2000 * kMs);
  double took = ms_between(t0, Clock::now());
  killer.join();
  ::sigaction(SIGUSR1, &old, nullptr);
  EXPECT_GE(rc, 0) << "wait() reported EINTR as an error: " << std::strerror(-rc);
  EXPECT_LT(took, 2100.0);
  // The backend still works after the interruption.
  Listener l;
  Recorder r;
  UniqueFd peer = connect_pair(r, l);
  EXPECT_TRUE(peer.valid());
}

// ---------------------------------------------------------------------------
// poll_fd() for hosts that embed the loop.

// Regression: on io_uring with DEFER_TASKRUN, completions wait as task work
// that never makes the ring fd pollable; a host polling poll_fd() slept
// forever. The backend now registers an eventfd. Data arriving on an armed
// receive must make poll_fd() readable before wait() is called. (Kernel 6.18,
// where these tests were written, does make a DEFER_TASKRUN ring fd pollable,
// so there this guards the contract rather than reproducing the old hang.)
TEST_P(BackendTest, PollFdSignalsCompletionsUnderDeferTaskrun) {
  Listener l;
  Recorder r;
  UniqueFd peer = connect_pair(r, l);
  ASSERT_TRUE(peer.valid());
  int pfd = b().poll_fd();
  ASSERT_GE(pfd, 0);
  for (int i = 0; i < 10 && b().has_pending(); ++i) ASSERT_GE(b().wait(0), 0);
  ASSERT_FALSE(b().has_pending());
  ASSERT_GE(b().wait(0), 0);

  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::string msg = "ping " + std::to_string(round);
    write_all(peer.get(), msg);
    pollfd p{pfd, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 2000), 1) << "poll_fd() never became readable";
    EXPECT_TRUE(p.revents & POLLIN);
    size_t before = r.data.size();
    for (int i = 0; i < 3 && r.data.size() < before + msg.size(); ++i) ASSERT_GE(b().wait(0), 0);
    EXPECT_EQ(r.data.substr(before), msg);
  }
}

// A host may ask for poll_fd() only after the loop has been running (the
// engine's backend_fd() can be called at any time). Completions that were
// already due when it asked must still make the fd readable: io_uring
// registers its eventfd lazily, and the kernel signals it only when the
// deferred task-work list goes from empty to non-empty.
TEST_P(BackendTest, PollFdAskedForLateStillSignalsCompletionsAlreadyDue) {
  Listener l;
  Recorder r;
  UniqueFd peer = connect_pair(r, l);
  ASSERT_TRUE(peer.valid());
  settle(20ms);  // the receive is armed
  ASSERT_FALSE(b().has_pending());
  write_all(peer.get(), "early");
  std::this_thread::sleep_for(20ms);  // the data is in, the completion due

  int pfd = b().poll_fd();  // first call only now
  ASSERT_GE(pfd, 0);
  ASSERT_FALSE(b().has_pending());
  pollfd p{pfd, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 2000), 1) << "a completion is due but poll_fd() is quiet";
  ASSERT_GE(b().wait(0), 0);
  EXPECT_EQ(r.data, "early");
}

// Connect, submit with wait(0), and if the connect has not completed inside
// that call, poll_fd() must signal it. poll_fd() is asked for before
// the first wait() (io_uring: while the ring is still disabled).
TEST_P(BackendTest, PollFdSignalsConnectCompletion) {
  Listener l;
  int pfd = b().poll_fd();
  ASSERT_GE(pfd, 0);
  Recorder r;
  ASSERT_NE(start_connect(r, l.addr(), l.addr_len()), nullptr);
  if (b().kind() == BackendKind::io_uring) {
    EXPECT_TRUE(b().has_pending()) << "the connect is queued for the next wait()";
  }
  ASSERT_GE(b().wait(0), 0);
  if (r.connected.empty() && !b().has_pending()) {
    pollfd p{pfd, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 2000), 1) << "poll_fd() never signalled the connect";
  }
  for (int i = 0; i < 3 && r.connected.empty(); ++i) ASSERT_GE(b().wait(0), 0);
  EXPECT_EQ(r.connected, std::vector<int>{0});
  EXPECT_EQ(b().poll_fd(), pfd) << "poll_fd() must be stable";
}

// A whole exchange driven only as an embedding host can: wait(0) when
// has_pending(), else poll(poll_fd()). Any lost notification hangs here.
TEST_P(BackendTest, EmbeddedLoopDrivenOnlyByPollFdCompletesExchange) {
  Listener l;
  Recorder r;
  ASSERT_NE(start_connect(r, l.addr(), l.addr_len()), nullptr);
  ASSERT_TRUE(run_embedded([&] { return !r.connected.empty(); })) << "connect not signalled";
  ASSERT_EQ(r.connected, std::vector<int>{0});
  UniqueFd peer = l.accept();
  ASSERT_TRUE(peer.valid());

  static const char kReq[] = "request";
  b().send(r.sock, kReq, 7);
  ASSERT_TRUE(run_embedded([&] { return !r.sent.empty(); })) << "send not signalled";
  char buf[16] = {};
  ASSERT_EQ(::recv(peer.get(), buf, 7, MSG_WAITALL), 7);
  EXPECT_EQ(std::string(buf, 7), "request");

  write_all(peer.get(), "response");
  ASSERT_TRUE(run_embedded([&] { return r.data.size() >= 8; })) << "data not signalled";
  EXPECT_EQ(r.data, "response");
  peer.reset();
  ASSERT_TRUE(run_embedded([&] { return r.ended(); })) << "EOF not signalled";
  EXPECT_EQ(r.eofs, 1);
}

// ---------------------------------------------------------------------------
// Watching descriptors the caller owns (watch_fd, for c-ares' sockets).

// Records on_fd_ready calls and checks that none comes after unwatch_fd().
struct WatchRecorder final : FdWatcher {
  FdWatch* watch = nullptr;
  int calls = 0;
  int reads = 0;   // calls with readable
  int writes = 0;  // calls with writable
  bool unwatched = false;  // set as soon as Backend::unwatch_fd returns
  std::function<void(WatchRecorder&, bool, bool)> hook;

  void on_fd_ready(bool readable, bool writable) noexcept override {
    if (unwatched) ADD_FAILURE() << "on_fd_ready called after Backend::unwatch_fd() returned";
    if (!readable && !writable) ADD_FAILURE() << "on_fd_ready with nothing ready";
    ++calls;
    reads += readable;
    writes += writable;
    if (hook) hook(*this, readable, writable);
  }
};

class WatchTest : public BackendTest {
 protected:
  void watch(WatchRecorder& r, int fd, bool read, bool write) {
    r.watch = b().watch_fd(fd, &r, read, write);
    ASSERT_NE(r.watch, nullptr);
  }
  void unwatch(WatchRecorder& r) {
    b().unwatch_fd(r.watch);
    r.unwatched = true;
  }
  // Turns the loop exactly n times with a short timeout each.
  void turns(int n) {
    for (int i = 0; i < n; ++i) ASSERT_GE(b().wait(2 * kMs), 0);
  }
};

struct Pipe {
  UniqueFd rd, wr;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2: " << std::strerror(errno);
      return;
    }
    rd.reset(fds[0]);
    wr.reset(fds[1]);
  }
  void put(const char* s = "x") { ASSERT_EQ(::write(wr.get(), s, std::strlen(s)), ssize_t(std::strlen(s))); }
  size_t drain() {
    char buf[256];
    size_t total = 0;
    for (ssize_t n; (n = ::read(rd.get(), buf, sizeof buf)) > 0;) total += size_t(n);
    return total;
  }
};

// Readable data is reported, and reported again on every turn while it
// stays unread (level-triggered); once drained, the callbacks stop.
TEST_P(WatchTest, ReadableFdIsReportedLevelTriggeredUntilDrained) {
  Pipe p;
  WatchRecorder r;
  watch(r, p.rd.get(), true, false);
  settle(30ms);
  EXPECT_EQ(r.calls, 0) << "an empty pipe was reported ready";

  p.put("hello");
  ASSERT_TRUE(run_until([&] { return r.calls > 0; }));
  EXPECT_EQ(r.writes, 0);
  EXPECT_EQ(r.reads, r.calls);
  ASSERT_TRUE(run_until([&] { return r.calls >= 4; })) << "unread data was not reported again";

  r.hook = [&](WatchRecorder&, bool, bool) { p.drain(); };
  int before = r.calls;
  ASSERT_TRUE(run_until([&] { return r.calls > before; }));
  int drained_at = r.calls;
  settle(30ms);
  EXPECT_EQ(r.calls, drained_at) << "reported again after the data was drained";
  unwatch(r);
}

TEST_P(WatchTest, WriteInterestReportsWritable) {
  Pipe p;
  WatchRecorder r;
  watch(r, p.wr.get(), false, true);
  ASSERT_TRUE(run_until([&] { return r.calls >= 2; }));
  EXPECT_EQ(r.writes, r.calls);
  EXPECT_EQ(r.reads, 0);
  unwatch(r);
  settle(10ms);
}

// Empty interest reports nothing even with data waiting; adding, widening
// and narrowing the interest take effect. The widening happens while a poll
// for the narrower interest is in flight (io_uring must replace it).
TEST_P(WatchTest, InterestChangesTakeEffect) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), peer(sv[1]);
  WatchRecorder r;
  watch(r, a.get(), false, false);
  ASSERT_EQ(::write(peer.get(), "x", 1), 1);
  settle(30ms);
  EXPECT_EQ(r.calls, 0) << "reported with no interest set";

  char c;
  ASSERT_EQ(::read(a.get(), &c, 1), 1);  // nothing readable now
  b().set_fd_interest(r.watch, true, false);
  settle(30ms);
  EXPECT_EQ(r.calls, 0) << "nothing is readable yet";

  // Widen to writable (always true for this socket) while the read poll waits.
  b().set_fd_interest(r.watch, true, true);
  ASSERT_TRUE(run_until([&] { return r.writes > 0; })) << "widened interest not seen";
  EXPECT_EQ(r.reads, 0);

  // Narrow back to reading: the writable socket must go quiet.
  b().set_fd_interest(r.watch, true, false);
  turns(3);
  int quiet_from = r.calls;
  settle(30ms);
  EXPECT_EQ(r.calls, quiet_from) << "still reported after write interest was dropped";

  ASSERT_EQ(::write(peer.get(), "y", 1), 1);
  ASSERT_TRUE(run_until([&] { return r.reads > 0; }));
  ASSERT_EQ(::read(a.get(), &c, 1), 1);

  // Interest cleared entirely: data waiting again, nothing reported.
  b().set_fd_interest(r.watch, false, false);
  turns(3);
  ASSERT_EQ(::write(peer.get(), "z", 1), 1);
  int cleared_at = r.calls;
  settle(30ms);
  EXPECT_EQ(r.calls, cleared_at) << "reported after the interest was cleared";
  unwatch(r);
}

// An error or hang-up counts as ready, so the owner's read meets it.
TEST_P(WatchTest, HangUpCountsAsReadable) {
  Pipe p;
  WatchRecorder r;
  watch(r, p.rd.get(), true, false);
  settle(10ms);
  p.wr.reset();
  ASSERT_TRUE(run_until([&] { return r.reads > 0; }));
  unwatch(r);
}

TEST_P(WatchTest, UnwatchStopsCallbacksWithDataPending) {
  Pipe p;
  WatchRecorder r;
  watch(r, p.rd.get(), true, false);
  p.put();
  ASSERT_TRUE(run_until([&] { return r.calls > 0; }));
  unwatch(r);
  p.rd.reset();  // the owner closes after unwatch, as documented
  settle(50ms);  // WatchRecorder fails the test on any late call
}

TEST_P(WatchTest, UnwatchFromInsideTheCallbackStopsCallbacks) {
  Pipe p;
  WatchRecorder r;
  r.hook = [&](WatchRecorder& self, bool, bool) {
    b().unwatch_fd(self.watch);
    self.unwatched = true;
  };
  watch(r, p.rd.get(), true, true);
  p.put();
  ASSERT_TRUE(run_until([&] { return r.calls > 0; }));
  settle(50ms);
  EXPECT_EQ(r.calls, 1);
}

// Watch and unwatch before the loop turns (io_uring has not even submitted
// the poll); the fd is closed and its number reused for a new watch at
// once. The first watcher hears nothing, the second hears its own fd.
TEST_P(WatchTest, WatchAndUnwatchInTheSameTurnThenReuseTheFdNumber) {
  Pipe p;
  p.put();
  WatchRecorder first;
  watch(first, p.rd.get(), true, false);
  unwatch(first);
  int number = p.rd.get();
  p.rd.reset();

  Pipe q;  // the lowest free descriptor: very likely the number just closed
  WatchRecorder second;
  watch(second, q.rd.get(), true, false);
  settle(30ms);
  EXPECT_EQ(second.calls, 0) << "fd " << number << " reused as " << q.rd.get();
  q.put();
  ASSERT_TRUE(run_until([&] { return second.calls > 0; }));
  unwatch(second);
  settle(10ms);
  EXPECT_EQ(first.calls, 0);
}

// Two fds are ready in the same turn; whichever callback runs first
// unwatches the other, which must then hear nothing.
TEST_P(WatchTest, CallbackUnwatchingAnotherReadyWatchSuppressesIt) {
  Pipe p1, p2;
  WatchRecorder r1, r2;
  auto kill_other = [&](WatchRecorder& self, bool, bool) {
    WatchRecorder& other = &self == &r1 ? r2 : r1;
    if (!other.unwatched) {
      b().unwatch_fd(other.watch);
      other.unwatched = true;
    }
    if (!self.unwatched) {
      b().unwatch_fd(self.watch);
      self.unwatched = true;
    }
  };
  r1.hook = kill_other;
  r2.hook = kill_other;
  watch(r1, p1.rd.get(), true, false);
  watch(r2, p2.rd.get(), true, false);
  p1.put();
  p2.put();
  ASSERT_TRUE(run_until([&] { return r1.calls + r2.calls > 0; }));
  settle(30ms);
  EXPECT_EQ(r1.calls + r2.calls, 1);
}

// A host that only polls poll_fd() must be woken by a watched fd.
TEST_P(WatchTest, WatchedFdReadinessWakesAnEmbeddingHost) {
  Pipe p;
  WatchRecorder r;
  watch(r, p.rd.get(), true, false);
  ASSERT_TRUE(run_embedded([&] { return !b().has_pending(); }));
  std::thread writer([&] {
    std::this_thread::sleep_for(20ms);
    p.put();
  });
  bool ok = run_embedded([&] { return r.calls > 0; });
  writer.join();
  EXPECT_TRUE(ok) << "poll_fd() stayed quiet while the watched fd was readable";
  unwatch(r);
}

INSTANTIATE_TEST_SUITE_P(Backends, WatchTest,
                         ::testing::Values(BackendKind::io_uring, BackendKind::epoll), kind_name);

// ---------------------------------------------------------------------------
// Many sockets at once.

// An echo server on its own thread, serving any number of connections.
class EchoServer {
 public:
  EchoServer() : thread_([this] { run(); }) {}
  ~EchoServer() {
    stop_ = true;
    thread_.join();
  }
  const Listener& listener() const { return listener_; }

 private:
  struct Conn {
    UniqueFd fd;
    std::string out;
  };
  void run() {
    ::fcntl(listener_.fd(), F_SETFL, O_NONBLOCK);  // accept until EAGAIN below
    std::vector<Conn> conns;
    std::vector<pollfd> pfds;
    std::vector<char> buf(65536);
    while (!stop_) {
      pfds.assign(1, pollfd{listener_.fd(), POLLIN, 0});
      for (auto& c : conns)
        pfds.push_back(pollfd{c.fd.get(), short(POLLIN | (c.out.empty() ? 0 : POLLOUT)), 0});
      if (::poll(pfds.data(), pfds.size(), 10) <= 0) continue;
      for (size_t i = 0; i < conns.size(); ++i) {
        Conn& c = conns[i];
        if (!c.fd.valid() || !pfds[i + 1].revents) continue;
        for (;;) {
          ssize_t n = ::recv(c.fd.get(), buf.data(), buf.size(), MSG_DONTWAIT);
          if (n > 0) {
            c.out.append(buf.data(), size_t(n));
            continue;
          }
          if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) c.fd.reset();
          break;
        }
        while (c.fd.valid() && !c.out.empty()) {
          ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
          if (n <= 0) break;
          c.out.erase(0, size_t(n));
        }
      }
      std::erase_if(conns, [](const Conn& c) { return !c.fd.valid(); });
      if (pfds[0].revents & POLLIN) {
        for (int fd; (fd = ::accept4(listener_.fd(), nullptr, nullptr,
                                     SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0;)
          conns.push_back(Conn{UniqueFd(fd), {}});
      }
    }
  }

  Listener listener_{4096};
  std::atomic<bool> stop_{false};
  std::thread thread_;  // last
};

class ManySockets {
 public:
  static constexpr int kCount = 500;

  ManySockets() : rs_(kCount) {
    for (int i = 0; i < kCount; ++i) {
      std::string m = std::to_string(i);
      m += ':';
      m += payload(3000 + size_t(i) * 7, 1000 + uint32_t(i));
      msgs_.push_back(std::move(m));
    }
  }

  // Connects all, sending each socket's own message once it is connected.
  void start(Backend& backend, const Listener& l) {
    for (int i = 0; i < kCount; ++i) {
      Recorder& r = rs_[i];
      r.connect_hook = [&backend, this, i](Recorder& self) {
        if (self.connected.back() == 0) backend.send(self.sock, msgs_[i].data(), msgs_[i].size());
      };
      int err = 0;
      r.sock = backend.connect(l.addr(), l.addr_len(), &r, &err);
      ASSERT_NE(r.sock, nullptr) << "socket " << i << ": " << std::strerror(err);
    }
  }

  bool all_echoed() const {
    for (int i = 0; i < kCount; ++i)
      if (rs_[i].data.size() < msgs_[i].size() || rs_[i].sent.empty()) return false;
    return true;
  }

  int unfinished() const {
    int n = 0;
    for (int i = 0; i < kCount; ++i) n += rs_[i].data.size() < msgs_[i].size();
    return n;
  }

  // Every socket got exactly its own message back; reports the first few
  // that did not rather than hundreds of lines.
  void check() const {
    int bad = 0;
    for (int i = 0; i < kCount; ++i) {
      const Recorder& r = rs_[i];
      bool ok = r.connected == std::vector<int>{0} &&
                r.sent == std::vector<ssize_t>{ssize_t(msgs_[i].size())} && r.data == msgs_[i] &&
                !r.ended();
      if (ok) continue;
      if (++bad <= 5)
        ADD_FAILURE() << "socket " << i << ": connected " << r.connected.size() << " ("
                      << (r.connected.empty() ? -1 : r.connected[0]) << "), sent " << r.sent.size()
                      << ", ends " << r.ends() << ", " << mismatch(r.data, msgs_[i]);
    }
    EXPECT_EQ(bad, 0) << "sockets with a wrong echo";
  }

  void close_all(Backend& backend) {
    for (auto& r : rs_) {
      if (!r.sock) continue;
      backend.close(r.sock, false);
      r.closed = true;
    }
  }

 private:
  std::vector<Recorder> rs_;
  std::vector<std::string> msgs_;
};

TEST_P(BackendTest, ManySocketsEchoWithoutCrossTalk) {
  EchoServer echo;
  ManySockets many;
  ASSERT_NO_FATAL_FAILURE(many.start(b(), echo.listener()));
  EXPECT_TRUE(run_until([&] { return many.all_echoed(); }, 20000ms))
      << many.unfinished() << " sockets unfinished";
  many.check();
  many.close_all(b());
  settle(50ms);
}

// The same through an embedding host's loop (poll_fd + has_pending only):
// with hundreds of completions due at once, none may be left behind without
// poll_fd() saying so.
TEST_P(BackendTest, ManySocketsThroughEmbeddedLoopAllFinish) {
  EchoServer echo;
  ManySockets many;
  ASSERT_NO_FATAL_FAILURE(many.start(b(), echo.listener()));
  EXPECT_TRUE(run_embedded([&] { return many.all_echoed(); }))
      << "poll_fd() went quiet with " << many.unfinished() << " sockets unfinished";
  many.check();
  many.close_all(b());
  settle(50ms);
}

// Hundreds of idle sockets with their receives armed all get data at once,
// while the host is asleep in poll(poll_fd()). io_uring runs only a bounded
// batch of task work per wait(0); whatever is left must keep poll_fd()
// readable (or has_pending() true) until every socket has its bytes.
TEST_P(BackendTest, EmbeddedLoopDeliversABurstOnManyIdleSockets) {
  constexpr int kCount = 1000;
  ASSERT_GE(b().poll_fd(), 0);  // the host asks for the fd before anything happens
  Listener l;
  std::vector<Recorder> rs(kCount);
  for (auto& r : rs) ASSERT_NE(start_connect(r, l.addr(), l.addr_len()), nullptr);
  ASSERT_TRUE(run_until([&] {
    for (auto& r : rs)
      if (r.connected.empty()) return false;
    return true;
  }));
  std::vector<UniqueFd> peers;
  for (int i = 0; i < kCount; ++i) {
    peers.push_back(l.accept());
    ASSERT_TRUE(peers.back().valid()) << "accept " << i;
  }
  // Let every receive get armed, then go quiet.
  settle(50ms);
  for (int i = 0; i < 10 && b().has_pending(); ++i) ASSERT_GE(b().wait(0), 0);
  ASSERT_FALSE(b().has_pending());
  ASSERT_GE(b().wait(0), 0);

  for (auto& p : peers) write_all(p.get(), "burst!");
  auto all_got = [&] {
    for (auto& r : rs)
      if (r.data.size() < 6) return false;
    return true;
  };
  int missing = 0;
  bool ok = run_embedded(all_got);
  for (auto& r : rs) missing += r.data.size() < 6;
  EXPECT_TRUE(ok) << "poll_fd() went quiet with " << missing << " sockets still owed data";
  for (auto& r : rs) EXPECT_EQ(r.data.substr(0, 6), "burst!");
  for (auto& r : rs) close(r, false);
  settle(20ms);
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendTest,
                         ::testing::Values(BackendKind::io_uring, BackendKind::epoll), kind_name);

// Selection itself, without a parameter: `automatic` must produce something.
TEST(BackendSelection, AutomaticAlwaysProducesABackend) {
  BackendChoice c = make_backend(BackendKind::automatic);
  ASSERT_NE(c.backend, nullptr) << c.why;
  EXPECT_FALSE(c.why.empty());
  EXPECT_NE(c.backend->kind(), BackendKind::automatic);
}

TEST(BackendSelection, NamesAreStable) {
  EXPECT_STREQ(backend_name(BackendKind::automatic), "auto");
  EXPECT_STREQ(backend_name(BackendKind::io_uring), "io_uring");
  EXPECT_STREQ(backend_name(BackendKind::epoll), "epoll");
}

}  // namespace
}  // namespace barrage
