// Edge-triggered epoll with io_uring's completion semantics: every socket is
// registered once for IN|OUT|RDHUP, sends are driven to the end before
// on_sent, and completions that happen inside send() are deferred to the
// next wait() so handlers are never re-entered. Watched descriptors
// (FdWatch) are registered separately and level-triggered, as their
// contract asks; their epoll data carries a low tag bit to tell them apart.
// Events a spent dispatch budget left are kept, in order, for the next
// wait(): edge-triggered epoll would not report them again.
#include "loop/epoll_backend.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace barrage {
namespace {

struct EpollSocket : Socket {
  const char* send_ptr = nullptr;
  size_t send_left = 0;
  size_t send_total = 0;
  bool sending = false;
  bool connecting = true;
  bool ended = false;  // EOF or error reported: the stream has nothing more to say
};

struct EpollWatch : FdWatch {
  bool registered = false;  // in the epoll set (only while some interest is set)
};

// Tag bit in epoll_event.data.u64 marking an EpollWatch (sockets are untagged,
// the wake eventfd is 0).
constexpr uint64_t kWatchTag = 1;
// A kept event whose socket or watch was closed before its turn came.
constexpr uint64_t kSkipped = 2;
static_assert(alignof(EpollWatch) >= 2 && alignof(EpollSocket) >= 2, "tag lives in bit 0");

uint32_t watch_events(const FdWatch* w) noexcept {
  return (w->want_read ? uint32_t(EPOLLIN) : 0u) | (w->want_write ? uint32_t(EPOLLOUT) : 0u);
}

constexpr size_t kReadBuffer = 64 * 1024;
constexpr int kMaxEvents = 512;

class EpollBackend final : public Backend {
 public:
  EpollBackend(int epfd, int wakefd) : epfd_(epfd), wakefd_(wakefd), rbuf_(kReadBuffer) {}
  ~EpollBackend() override {
    for (EpollSocket* s : all_) {
      if (s->fd >= 0) ::close(s->fd);
      delete s;
    }
    for (EpollWatch* w : all_watches_) delete w;  // their fds are the callers'
    ::close(wakefd_);
    ::close(epfd_);
  }

  BackendKind kind() const noexcept override { return BackendKind::epoll; }
  int poll_fd() const noexcept override { return epfd_; }
  bool has_pending() const noexcept override { return !deferred_.empty() || ready_next_ < ready_count_; }

  void wake() noexcept override {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wakefd_, &one, sizeof one);
  }

  Socket* connect(const sockaddr* addr, socklen_t len, SocketHandler* handler,
                  int* err) noexcept override {
    int fd = open_tcp_socket(addr->sa_family);
    if (fd < 0) {
      *err = -fd;
      return nullptr;
    }
    EpollSocket* s = allocate();
    if (!s) {
      ::close(fd);
      *err = ENOMEM;
      return nullptr;
    }
    s->fd = fd;
    s->handler = handler;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = s;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0) {
      *err = errno;
      release(s);
      return nullptr;
    }
    int rc = ::connect(fd, addr, len);
    if (rc == 0) {
      s->connecting = false;
      deferred_.push_back({s, Deferred::connected, 0});
    } else if (errno != EINPROGRESS) {
      // Report asynchronously like io_uring does, so callers have one path.
      s->connecting = false;
      deferred_.push_back({s, Deferred::connected, errno});
    }
    return s;
  }

  void send(Socket* base, const void* data, size_t len) noexcept override {
    auto* s = static_cast<EpollSocket*>(base);
    s->send_ptr = static_cast<const char*>(data);
    s->send_left = len;
    s->send_total = len;
    s->sending = true;
    ssize_t res = 0;
    if (drive_send(s, &res)) {
      s->sending = false;
      deferred_.push_back({s, Deferred::sent, res});
    }
  }

  void close(Socket* base, bool abort) noexcept override {
    auto* s = static_cast<EpollSocket*>(base);
    if (s->closed()) return;
    s->handler = nullptr;
    if (abort) {
      linger lg{1, 0};
      ::setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    ::close(s->fd);  // also removes it from the epoll set
    s->fd = -1;
    // Events of this turn may still point at s: free it at the end of wait().
    to_free_.push_back(s);
  }

  FdWatch* watch_fd(int fd, FdWatcher* watcher, bool read, bool write) noexcept override {
    EpollWatch* w = allocate_watch();
    if (!w) return nullptr;
    w->fd = fd;
    w->watcher = watcher;
    if (update_registration(w, read, write) != 0) {
      w->watcher = nullptr;
      free_watches_.push_back(w);
      return nullptr;
    }
    return w;
  }

  void set_fd_interest(FdWatch* base, bool read, bool write) noexcept override {
    auto* w = static_cast<EpollWatch*>(base);
    if (!w->watcher) return;
    // A failure here (ENOMEM) leaves the old registration; the owner's own
    // timeouts (c-ares has them) cover the rare lost event.
    update_registration(w, read, write);
  }

  void unwatch_fd(FdWatch* base) noexcept override {
    auto* w = static_cast<EpollWatch*>(base);
    if (!w->watcher) return;
    if (w->registered) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, w->fd, nullptr);
    w->registered = false;
    w->watcher = nullptr;
    w->fd = -1;
    // Events of this turn may still point at w: free it at the end of wait().
    to_free_watches_.push_back(w);
  }

  using Backend::wait;
  int wait(int64_t timeout_ns, int64_t budget_ns) noexcept override {
    TimeBudget budget(budget_ns);
    int dispatched = 0;
    // What the last wait() left comes first, so nothing waits behind newer events.
    if (!run_deferred(budget, &dispatched) && !dispatch_ready(budget, &dispatched)) {
      if (!deferred_.empty() || dispatched > 0) timeout_ns = 0;
      timespec ts{}, *tsp = nullptr;
      if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        tsp = &ts;
      }
      int n = ::epoll_pwait2(epfd_, ready_, kMaxEvents, tsp, nullptr);
      if (n < 0) {
        free_closed();
        return errno == EINTR ? dispatched : -errno;
      }
      ready_next_ = 0;
      ready_count_ = n;
      if (timeout_ns != 0) budget.restart(budget_ns);  // the time asleep is not dispatching
      dispatch_ready(budget, &dispatched);
    }
    free_closed();
    return dispatched;
  }

  int init() noexcept {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;
    return ::epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev) < 0 ? errno : 0;
  }

 private:
  struct Deferred {
    EpollSocket* s;
    enum Kind { connected, sent } kind;
    ssize_t res;
  };

  // Level-triggered, and out of the set while nothing is wanted: epoll
  // reports EPOLLERR/EPOLLHUP even for an empty mask, which would spin.
  int update_registration(EpollWatch* w, bool read, bool write) noexcept {
    w->want_read = read;
    w->want_write = write;
    epoll_event ev{};
    ev.events = watch_events(w);
    ev.data.u64 = reinterpret_cast<uint64_t>(w) | kWatchTag;
    if (ev.events == 0) {
      if (w->registered) ::epoll_ctl(epfd_, EPOLL_CTL_DEL, w->fd, nullptr);
      w->registered = false;
      return 0;
    }
    if (::epoll_ctl(epfd_, w->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, w->fd, &ev) < 0) return errno;
    w->registered = true;
    return 0;
  }

  // The interest is read now, not from the event: a callback earlier in this
  // turn may have changed it.
  int handle_watch(EpollWatch* w, uint32_t ev) noexcept {
    if (!w->watcher) return 0;
    bool readable = w->want_read && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP));
    bool writable = w->want_write && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP));
    if (!readable && !writable) return 0;
    w->watcher->on_fd_ready(readable, writable);
    return 1;
  }

  void handle(EpollSocket* s, uint32_t ev) noexcept {
    if (s->closed()) return;
    if (s->connecting) {
      if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
      s->connecting = false;
      s->handler->on_connected(err);
      if (s->closed() || err != 0) return;
    }
    if (s->sending && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
      ssize_t res = 0;
      if (drive_send(s, &res)) {
        s->sending = false;
        s->handler->on_sent(res);
        if (s->closed()) return;
      }
    }
    if (!s->ended && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)))
      drain(s, ev & (EPOLLRDHUP | EPOLLERR | EPOLLHUP));
  }

  // Reads until the socket is empty. A short read means it was drained:
  // new data raises a new edge. But a hang-up or error reported in this
  // same event raises none, so then read on until recv says EOF or error.
  void drain(EpollSocket* s, bool hangup) noexcept {
    for (;;) {
      ssize_t n = ::recv(s->fd, rbuf_.data(), rbuf_.size(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        s->ended = true;
        s->handler->on_received(nullptr, -errno);
        return;
      }
      if (n == 0) {
        // Like io_uring's final recv CQE: EOF is reported once; a later
        // reset of the same peer is not news.
        s->ended = true;
        s->handler->on_received(nullptr, 0);
        return;
      }
      s->handler->on_received(rbuf_.data(), n);
      if (s->closed() || (size_t(n) < rbuf_.size() && !hangup)) return;
    }
  }

  // True when the send finished (res = bytes or -errno); false on EAGAIN.
  bool drive_send(EpollSocket* s, ssize_t* res) noexcept {
    while (s->send_left > 0) {
      ssize_t n = ::send(s->fd, s->send_ptr, s->send_left, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
        *res = -errno;
        return true;
      }
      s->send_ptr += n;
      s->send_left -= size_t(n);
    }
    *res = ssize_t(s->send_total);
    return true;
  }

  // Completions queued inside connect() and send(); true if the budget
  // stopped it with some left (they go back in front of any queued since).
  bool run_deferred(const TimeBudget& budget, int* dispatched) noexcept {
    if (deferred_.empty()) return false;
    running_.swap(deferred_);
    size_t i = 0;
    bool stopped = false;
    while (i < running_.size() && !stopped) {
      const Deferred d = running_[i++];
      if (d.s->closed()) continue;
      ++*dispatched;
      if (d.kind == Deferred::connected)
        d.s->handler->on_connected(int(d.res));
      else
        d.s->handler->on_sent(d.res);
      stopped = i < running_.size() && budget.spent();
    }
    deferred_.insert(deferred_.begin(), running_.begin() + ptrdiff_t(i), running_.end());
    running_.clear();
    return stopped;
  }

  // The events epoll_pwait2 returned, from the first not yet dispatched;
  // true if the budget stopped it with some left.
  bool dispatch_ready(const TimeBudget& budget, int* dispatched) noexcept {
    while (ready_next_ < ready_count_) {
      const epoll_event& e = ready_[ready_next_++];
      const uint64_t data = e.data.u64;
      if (data == kSkipped) continue;
      if (data == 0) {
        uint64_t v;
        [[maybe_unused]] ssize_t r = ::read(wakefd_, &v, sizeof v);
        continue;
      }
      if (data & kWatchTag) {
        *dispatched += handle_watch(reinterpret_cast<EpollWatch*>(data & ~kWatchTag), e.events);
      } else {
        handle(reinterpret_cast<EpollSocket*>(data), e.events);
        ++*dispatched;
      }
      if (ready_next_ < ready_count_ && budget.spent()) return true;
    }
    return false;
  }

  EpollWatch* allocate_watch() noexcept {
    if (!free_watches_.empty()) {
      EpollWatch* w = free_watches_.back();
      free_watches_.pop_back();
      *w = EpollWatch{};
      return w;
    }
    auto* w = new (std::nothrow) EpollWatch;
    if (w) all_watches_.push_back(w);
    return w;
  }

  EpollSocket* allocate() noexcept {
    if (!free_.empty()) {
      EpollSocket* s = free_.back();
      free_.pop_back();
      *s = EpollSocket{};
      return s;
    }
    auto* s = new (std::nothrow) EpollSocket;
    if (s) all_.push_back(s);
    return s;
  }

  void release(EpollSocket* s) noexcept {
    if (s->fd >= 0) ::close(s->fd);
    s->fd = -1;
    s->handler = nullptr;
    free_.push_back(s);
  }

  void free_closed() noexcept {
    // Kept events must not reach whoever reuses a closed socket or watch.
    for (int i = ready_next_; i < ready_count_ && !(to_free_.empty() && to_free_watches_.empty()); ++i) {
      const uint64_t data = ready_[i].data.u64;  // epoll_event is packed: no reference
      if (data == 0 || data == kSkipped) continue;
      const bool gone = (data & kWatchTag) ? reinterpret_cast<EpollWatch*>(data & ~kWatchTag)->watcher == nullptr
                                           : reinterpret_cast<EpollSocket*>(data)->closed();
      if (gone) ready_[i].data.u64 = kSkipped;
    }
    for (EpollWatch* w : to_free_watches_) free_watches_.push_back(w);
    to_free_watches_.clear();
    if (to_free_.empty()) return;
    // A completion queued for a socket closed later in the same turn must
    // not reach whoever reuses the socket object next.
    std::erase_if(deferred_, [](const Deferred& d) { return d.s->closed(); });
    for (EpollSocket* s : to_free_) free_.push_back(s);
    to_free_.clear();
  }

  int epfd_;
  int wakefd_;
  std::vector<char> rbuf_;
  epoll_event ready_[kMaxEvents];
  int ready_next_ = 0, ready_count_ = 0;  // [next, count) of ready_: not yet dispatched
  std::vector<Deferred> deferred_, running_;
  std::vector<EpollSocket*> all_, free_, to_free_;
  std::vector<EpollWatch*> all_watches_, free_watches_, to_free_watches_;
};

}  // namespace

std::unique_ptr<Backend> make_epoll_backend(std::string* err) noexcept {
  int epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    *err = std::string("epoll_create1: ") + std::strerror(errno);
    return nullptr;
  }
  int wakefd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakefd < 0) {
    *err = std::string("eventfd: ") + std::strerror(errno);
    ::close(epfd);
    return nullptr;
  }
  auto b = std::unique_ptr<EpollBackend>(new (std::nothrow) EpollBackend(epfd, wakefd));
  if (!b) {
    ::close(wakefd);
    ::close(epfd);
    *err = "out of memory";
    return nullptr;
  }
  if (int e = b->init()) {
    *err = std::string("epoll_ctl: ") + std::strerror(e);
    return nullptr;
  }
  return b;
}

}  // namespace barrage
