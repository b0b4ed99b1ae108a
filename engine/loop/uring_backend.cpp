// io_uring backend. Sockets receive through one multishot recv each, into a
// ring of provided buffers shared by all sockets, so idle connections hold
// no receive memory. Everything queued in a loop turn goes to the kernel in
// one io_uring_enter at the start of wait(). Watched descriptors (FdWatch)
// get one one-shot POLL_ADD at a time, re-armed after each completion.
#include "loop/uring_backend.hpp"

#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace barrage {
namespace {

enum Op : uint64_t { kConnect = 0, kSend = 1, kRecv = 2, kWake = 3, kIgnore = 4, kPoll = 5 };
constexpr uint64_t kOpMask = 7;

struct UringSocket : Socket {
  const char* send_ptr = nullptr;
  size_t send_left = 0;
  size_t send_total = 0;
  uint32_t pending = 0;  // operations whose final CQE has not arrived
  bool abort = false;
  bool in_free_list = false;
  sockaddr_storage addr{};  // the connect SQE reads it at submission
};
static_assert(alignof(UringSocket) >= 8, "op tag lives in the low 3 bits");

// A watch has at most one poll request in the kernel. One-shot rather than
// multishot on purpose: a multishot poll reports wake-ups (edges), so an fd
// left readable by its owner would never be reported again, while a
// one-shot poll armed on a ready fd completes at once, which gives the
// level-triggered contract of FdWatcher for the price of one SQE per event.
struct UringWatch : FdWatch {
  unsigned armed_mask = 0;      // events of the poll in flight
  bool poll_in_flight = false;  // its CQE has not arrived yet
  bool remove_sent = false;     // a POLL_REMOVE for it is queued or in flight
  bool in_callback = false;     // unwatch_fd from inside on_fd_ready defers the release
  bool in_free_list = false;
};
static_assert(alignof(UringWatch) >= 8, "op tag lives in the low 3 bits");

unsigned poll_mask(const FdWatch* w) noexcept {
  return (w->want_read ? unsigned(POLLIN) : 0u) | (w->want_write ? unsigned(POLLOUT) : 0u);
}

// liburing 2.3 declares io_uring_enable_rings but its version script does
// not export it (fixed in 2.4), so the register call is made directly.
int enable_rings(io_uring* ring) noexcept {
  long rc = ::syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
  return rc < 0 ? -errno : 0;
}

constexpr unsigned kEntries = 4096;
// Every buffer of the ring gets touched as the kernel cycles through it, so
// the ring is resident memory shared by all sockets: 256 KiB here. A typical
// answer record fits one buffer; running out costs only a re-armed receive
// (ENOBUFS below). bench_e2e at 1k and 10k in flight measured the same CPU
// per request with 128, 256 and 512 buffers (8.8-9.6 / 13.6-14.4 us), while
// RSS per connection at 1k fell from 24.7-25.1 KiB (512) to 23.2-23.5 KiB.
constexpr unsigned kBufCount = 128;  // power of two
constexpr unsigned kBufSize = 2048;
constexpr uint16_t kBufGroup = 0;

class UringBackend final : public Backend {
 public:
  ~UringBackend() override {
    for (UringSocket* s : all_) {
      if (s->fd >= 0) ::close(s->fd);
      delete s;
    }
    for (UringWatch* w : all_watches_) delete w;  // their fds are the callers'
    if (ring_ready_) io_uring_queue_exit(&ring_);
    if (buf_ring_) ::munmap(buf_ring_, ring_bytes());
    if (buffers_) ::munmap(buffers_, size_t(kBufCount) * kBufSize);
    if (wakefd_ >= 0) ::close(wakefd_);
    if (notify_fd_ >= 0) ::close(notify_fd_);
  }

  // Returns "" or why io_uring cannot serve here.
  std::string init() noexcept {
    io_uring_params p{};
    // SINGLE_ISSUER + DEFER_TASKRUN run completions only when we ask, on our
    // thread (kernel >= 6.1). R_DISABLED lets the thread that runs the
    // reactor, not the one that created the engine, become the issuer.
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
              IORING_SETUP_R_DISABLED | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
    p.cq_entries = kEntries * 4;
    int rc = io_uring_queue_init_params(kEntries, &ring_, &p);
    if (rc == -EINVAL) {
      // Older kernel: plain ring with cooperative task running.
      p = io_uring_params{};
      p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN;
      p.cq_entries = kEntries * 4;
      rc = io_uring_queue_init_params(kEntries, &ring_, &p);
      needs_enable_ = false;
    } else {
      needs_enable_ = true;
    }
    if (rc < 0) return std::string("io_uring_queue_init: ") + std::strerror(-rc);
    ring_ready_ = true;
    deferred_taskrun_ = needs_enable_;
    if (!(p.features & IORING_FEAT_FAST_POLL)) return "kernel lacks IORING_FEAT_FAST_POLL";

    buf_ring_ = static_cast<io_uring_buf_ring*>(
        ::mmap(nullptr, ring_bytes(), PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0));
    if (buf_ring_ == MAP_FAILED) {
      buf_ring_ = nullptr;
      return "mmap of the buffer ring failed";
    }
    buffers_ = static_cast<char*>(::mmap(nullptr, size_t(kBufCount) * kBufSize,
                                         PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0));
    if (buffers_ == MAP_FAILED) {
      buffers_ = nullptr;
      return "mmap of the receive buffers failed";
    }
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(buf_ring_);
    reg.ring_entries = kBufCount;
    reg.bgid = kBufGroup;
    rc = io_uring_register_buf_ring(&ring_, &reg, 0);
    if (rc < 0) return std::string("provided buffer rings unsupported: ") + std::strerror(-rc);
    io_uring_buf_ring_init(buf_ring_);
    for (unsigned i = 0; i < kBufCount; ++i)
      io_uring_buf_ring_add(buf_ring_, buffers_ + size_t(i) * kBufSize, kBufSize, uint16_t(i),
                            io_uring_buf_ring_mask(kBufCount), int(i));
    io_uring_buf_ring_advance(buf_ring_, int(kBufCount));

    wakefd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wakefd_ < 0) return std::string("eventfd: ") + std::strerror(errno);
    notify_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (notify_fd_ < 0) return std::string("eventfd: ") + std::strerror(errno);
    rc = io_uring_register_eventfd(&ring_, notify_fd_);
    if (rc < 0) return std::string("io_uring_register_eventfd: ") + std::strerror(-rc);
    return "";
  }

  BackendKind kind() const noexcept override { return BackendKind::io_uring; }
  // With DEFER_TASKRUN, completions wait as task work that only wakes a
  // thread inside io_uring_enter, not (on every kernel) a poll() on the ring
  // fd; the kernel does signal a registered eventfd for it. Registered at
  // set-up, before the ring has an issuer, and drained only once somebody
  // polls it, so engines nobody embeds pay one kernel-side signal at most.
  int poll_fd() const noexcept override {
    notify_used_ = true;
    return notify_fd_;
  }

  bool has_pending() const noexcept override {
    auto* ring = const_cast<io_uring*>(&ring_);
    return needs_enable_ || io_uring_sq_ready(ring) > 0 || io_uring_cq_ready(ring) > 0;
  }

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
    UringSocket* s = allocate();
    if (!s) {
      ::close(fd);
      *err = ENOMEM;
      return nullptr;
    }
    s->fd = fd;
    s->handler = handler;
    std::memcpy(&s->addr, addr, len);
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_connect(sqe, fd, reinterpret_cast<sockaddr*>(&s->addr), len);
    io_uring_sqe_set_data64(sqe, tag(s, kConnect));
    ++s->pending;
    return s;
  }

  void send(Socket* base, const void* data, size_t len) noexcept override {
    auto* s = static_cast<UringSocket*>(base);
    s->send_ptr = static_cast<const char*>(data);
    s->send_left = len;
    s->send_total = len;
    queue_send(s);
  }

  void close(Socket* base, bool abort) noexcept override {
    auto* s = static_cast<UringSocket*>(base);
    if (s->closed()) return;
    s->handler = nullptr;
    s->abort = abort;
    if (s->pending == 0) {
      finish_close(s);
      return;
    }
    // The fd stays open until every operation on it has completed, so no
    // CQE can refer to a reused descriptor or a freed socket.
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel_fd(sqe, s->fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, kIgnore);
    // The peer learns now, not when the cancel is submitted with the next
    // wait() (in inline mode, the caller's next brg_poll). An abort must be
    // a reset: a FIN first reads as a half-close, which a server may answer
    // in full. connect(AF_UNSPEC) disconnects a TCP socket with a RST even
    // while the ring still holds the file.
    if (abort) {
      sockaddr unspec{};
      unspec.sa_family = AF_UNSPEC;
      [[maybe_unused]] int rc = ::connect(s->fd, &unspec, sizeof unspec);
    } else {
      ::shutdown(s->fd, SHUT_RDWR);
    }
  }

  FdWatch* watch_fd(int fd, FdWatcher* watcher, bool read, bool write) noexcept override {
    UringWatch* w = allocate_watch();
    if (!w) return nullptr;
    w->fd = fd;
    w->watcher = watcher;
    w->want_read = read;
    w->want_write = write;
    arm_poll(w);
    return w;
  }

  void set_fd_interest(FdWatch* base, bool read, bool write) noexcept override {
    auto* w = static_cast<UringWatch*>(base);
    if (!w->watcher) return;
    w->want_read = read;
    w->want_write = write;
    if (!w->poll_in_flight) {
      arm_poll(w);
    } else if (poll_mask(w) & ~w->armed_mask) {
      // The poll in flight cannot see the new event: cancel it; its CQE
      // (-ECANCELED, or a real event that won the race) re-arms with the
      // new interest. Narrower interest needs nothing: events nobody wants
      // any more are filtered when the poll completes.
      remove_poll(w);
    }
  }

  void unwatch_fd(FdWatch* base) noexcept override {
    auto* w = static_cast<UringWatch*>(base);
    if (!w->watcher) return;
    w->watcher = nullptr;
    if (w->poll_in_flight)
      remove_poll(w);  // released when the poll's CQE arrives, never before
    else if (!w->in_callback)
      release_watch(w);
  }

  using Backend::wait;
  int wait(int64_t timeout_ns, int64_t budget_ns) noexcept override {
    if (needs_enable_) {
      int rc = enable_rings(&ring_);
      if (rc < 0) return rc;
      needs_enable_ = false;
      arm_wake();
    }
    if (notify_used_) {
      uint64_t v;
      [[maybe_unused]] ssize_t n = ::read(notify_fd_, &v, sizeof v);  // re-arm readiness
    }
    io_uring_cqe* cqe = nullptr;
    int rc;
    if (timeout_ns == 0) {
      // With DEFER_TASKRUN, completions wait as task work until an enter
      // with GETEVENTS runs it, and the kernel signals the notify eventfd
      // only when that work list goes from empty to not empty. So a turn
      // must always run it: a turn that found CQEs already posted and ran
      // nothing left the list non-empty, later completions never signalled,
      // and a host loop asleep on poll_fd() slept until its next timer
      // (seconds: test_capi_mock HostLoopCanSleepOnBackendFdAndTimeout).
      rc = deferred_taskrun_ ? io_uring_submit_and_get_events(&ring_) : io_uring_submit(&ring_);
    } else if (timeout_ns < 0) {
      rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, nullptr, nullptr);
    } else {
      __kernel_timespec ts{timeout_ns / 1000000000, timeout_ns % 1000000000};
      rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    }
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY) return rc;

    int dispatched = 0;
    // Handlers queue new SQEs while we walk the CQ; they go out next turn.
    // CQEs a spent budget leaves stay in the ring for the next wait(),
    // which then finds them without blocking.
    TimeBudget budget(budget_ns);
    for (bool stopped = false; !stopped;) {
      unsigned head, seen = 0;
      io_uring_cqe* c;
      io_uring_for_each_cqe(&ring_, head, c) {
        ++seen;
        complete(c->user_data, c->res, c->flags);
        if ((stopped = budget.spent())) break;
      }
      if (seen == 0) break;
      io_uring_cq_advance(&ring_, seen);
      dispatched += int(seen);
    }
    return dispatched;
  }

  void submit() noexcept override {
    if (!needs_enable_) io_uring_submit(&ring_);
  }

 private:
  static uint64_t tag(UringSocket* s, Op op) noexcept { return reinterpret_cast<uint64_t>(s) | op; }
  static uint64_t tag(UringWatch* w) noexcept { return reinterpret_cast<uint64_t>(w) | kPoll; }
  static size_t ring_bytes() noexcept { return size_t(kBufCount) * sizeof(io_uring_buf); }

  io_uring_sqe* get_sqe() noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    while (!sqe) {
      // SQ full within one turn: flush early rather than fail the operation.
      if (!needs_enable_) io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
      if (!sqe && needs_enable_) {
        enable_rings(&ring_);
        needs_enable_ = false;
        arm_wake();
      }
    }
    return sqe;
  }

  void arm_wake() noexcept {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_read(sqe, wakefd_, &wake_value_, sizeof wake_value_, 0);
    io_uring_sqe_set_data64(sqe, kWake);
  }

  void queue_send(UringSocket* s) noexcept {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_send(sqe, s->fd, s->send_ptr, s->send_left, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, tag(s, kSend));
    ++s->pending;
  }

  void queue_recv(UringSocket* s) noexcept {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_recv_multishot(sqe, s->fd, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = kBufGroup;
    io_uring_sqe_set_data64(sqe, tag(s, kRecv));
    ++s->pending;
  }

  void recycle_buffer(unsigned bid) noexcept {
    io_uring_buf_ring_add(buf_ring_, buffers_ + size_t(bid) * kBufSize, kBufSize, uint16_t(bid),
                          io_uring_buf_ring_mask(kBufCount), 0);
    io_uring_buf_ring_advance(buf_ring_, 1);
  }

  void arm_poll(UringWatch* w) noexcept {
    unsigned mask = poll_mask(w);
    if (mask == 0) return;  // nothing wanted: no poll until set_fd_interest
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_poll_add(sqe, w->fd, mask);
    io_uring_sqe_set_data64(sqe, tag(w));
    w->armed_mask = mask;
    w->poll_in_flight = true;
    w->remove_sent = false;
  }

  // Removal goes by user_data, not fd: the owner may close (and the kernel
  // reuse) the fd number before the removal is submitted.
  void remove_poll(UringWatch* w) noexcept {
    if (w->remove_sent) return;
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_poll_remove(sqe, tag(w));
    io_uring_sqe_set_data64(sqe, kIgnore);
    w->remove_sent = true;
  }

  void complete_poll(UringWatch* w, int res) noexcept {
    w->poll_in_flight = false;
    w->remove_sent = false;
    if (!w->watcher) {
      release_watch(w);
      return;
    }
    bool readable = false, writable = false;
    if (res >= 0) {
      unsigned ev = unsigned(res);
      // POLLNVAL (the owner closed the fd without unwatching) is reported
      // like an error, so the owner meets EBADF instead of the loop spinning.
      readable = w->want_read && (ev & (POLLIN | POLLERR | POLLHUP | POLLRDHUP | POLLNVAL));
      writable = w->want_write && (ev & (POLLOUT | POLLERR | POLLHUP | POLLNVAL));
    } else if (res != -ECANCELED) {
      // The kernel could not poll the fd: let the owner try its I/O and
      // meet the error itself rather than wait forever.
      readable = w->want_read;
      writable = w->want_write;
    }
    if (readable || writable) {
      w->in_callback = true;
      w->watcher->on_fd_ready(readable, writable);
      w->in_callback = false;
      if (!w->watcher) {
        if (!w->poll_in_flight) release_watch(w);
        return;
      }
    }
    if (!w->poll_in_flight) arm_poll(w);  // the callback may have armed it already
  }

  void complete(uint64_t data, int res, unsigned flags) noexcept {
    if (data == kIgnore) return;
    uint64_t op = data & kOpMask;
    if (data == kWake) {
      arm_wake();
      return;
    }
    if (op == kPoll) {
      complete_poll(reinterpret_cast<UringWatch*>(data & ~kOpMask), res);
      return;
    }
    auto* s = reinterpret_cast<UringSocket*>(data & ~kOpMask);
    switch (op) {
      case kConnect:
        --s->pending;
        if (!s->closed()) {
          if (res == 0) queue_recv(s);
          s->handler->on_connected(-res);
        }
        break;
      case kSend:
        --s->pending;
        if (s->closed()) break;
        if (res > 0 && size_t(res) < s->send_left) {
          s->send_ptr += res;
          s->send_left -= size_t(res);
          queue_send(s);
          break;
        }
        s->send_left = 0;
        s->handler->on_sent(res < 0 ? res : ssize_t(s->send_total));
        break;
      case kRecv: {
        bool more = flags & IORING_CQE_F_MORE;
        if (!more) --s->pending;
        if (flags & IORING_CQE_F_BUFFER) {
          unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
          if (!s->closed() && res > 0) s->handler->on_received(buffers_ + size_t(bid) * kBufSize, res);
          recycle_buffer(bid);
        }
        if (s->closed() || more) break;
        if (res > 0 || res == -ENOBUFS)
          queue_recv(s);  // the kernel ended the multishot (or ran out of buffers): re-arm
        else
          s->handler->on_received(nullptr, res);  // 0 = peer closed, < 0 = error
        break;
      }
      default:
        break;
    }
    if (s->closed() && s->pending == 0) finish_close(s);
  }

  void finish_close(UringSocket* s) noexcept {
    if (s->in_free_list) return;
    if (s->abort) {
      linger lg{1, 0};
      ::setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    ::close(s->fd);
    s->fd = -1;
    s->in_free_list = true;
    free_.push_back(s);
  }

  UringWatch* allocate_watch() noexcept {
    if (!free_watches_.empty()) {
      UringWatch* w = free_watches_.back();
      free_watches_.pop_back();
      *w = UringWatch{};
      return w;
    }
    auto* w = new (std::nothrow) UringWatch;
    if (w) all_watches_.push_back(w);
    return w;
  }

  // Only once no CQE can name w any more: a reused watch must never get a
  // previous owner's completion.
  void release_watch(UringWatch* w) noexcept {
    if (w->in_free_list) return;
    w->fd = -1;
    w->in_free_list = true;
    free_watches_.push_back(w);
  }

  UringSocket* allocate() noexcept {
    if (!free_.empty()) {
      UringSocket* s = free_.back();
      free_.pop_back();
      *s = UringSocket{};
      return s;
    }
    auto* s = new (std::nothrow) UringSocket;
    if (s) all_.push_back(s);
    return s;
  }

  io_uring ring_{};
  bool ring_ready_ = false;
  bool needs_enable_ = false;
  bool deferred_taskrun_ = false;
  io_uring_buf_ring* buf_ring_ = nullptr;
  char* buffers_ = nullptr;
  int wakefd_ = -1;
  int notify_fd_ = -1;
  mutable bool notify_used_ = false;
  uint64_t wake_value_ = 0;
  std::vector<UringSocket*> all_, free_;
  std::vector<UringWatch*> all_watches_, free_watches_;
};

}  // namespace

std::unique_ptr<Backend> make_uring_backend(std::string* err) noexcept {
  auto b = std::unique_ptr<UringBackend>(new (std::nothrow) UringBackend);
  if (!b) {
    *err = "out of memory";
    return nullptr;
  }
  std::string why = b->init();
  if (!why.empty()) {
    *err = why;
    return nullptr;
  }
  return b;
}

}  // namespace barrage
