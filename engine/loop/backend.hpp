// The reactor's one interface: a proactor (connect, send, receive, close,
// wake) that both the io_uring and the epoll backend implement with the same
// observable behaviour, plus readiness watching of descriptors other
// libraries own (c-ares' DNS sockets). It knows sockets and bytes, nothing
// of TLS or HTTP.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "loop/time_budget.hpp"

namespace barrage {

enum class BackendKind { automatic = 0, io_uring = 1, epoll = 2 };
const char* backend_name(BackendKind kind) noexcept;

// Completions for one socket. Called only from Backend::wait(), on the loop
// thread, never after Backend::close() of that socket has returned.
class SocketHandler {
 public:
  // 0, or the errno of the failed connect.
  virtual void on_connected(int err) noexcept = 0;
  // The whole buffer given to send() was written (res = its length), or -errno.
  virtual void on_sent(ssize_t res) noexcept = 0;
  // n > 0: bytes received (data valid only during the call); 0: the peer
  // closed; < 0: -errno. Receiving starts by itself once connected.
  virtual void on_received(const char* data, ssize_t n) noexcept = 0;

 protected:
  ~SocketHandler() = default;
};

// Backend-owned per-socket state; opaque outside the backends.
struct Socket {
  int fd = -1;
  SocketHandler* handler = nullptr;  // nullptr once closed
  bool closed() const noexcept { return handler == nullptr; }
};

// Readiness of a descriptor the caller owns and does its own I/O on. Level-
// triggered, like poll(2): on_fd_ready repeats on every wait() for as long
// as the fd stays ready for an interest that is set. An error or hang-up
// counts as ready for whatever interest is set, so the caller's next read or
// write finds it. Called only from Backend::wait(), on the loop thread,
// never re-entered, never after Backend::unwatch_fd() has returned.
class FdWatcher {
 public:
  virtual void on_fd_ready(bool readable, bool writable) noexcept = 0;

 protected:
  ~FdWatcher() = default;
};

// Backend-owned per-watch state; opaque outside the backends.
struct FdWatch {
  int fd = -1;
  FdWatcher* watcher = nullptr;  // nullptr once unwatched
  bool want_read = false;
  bool want_write = false;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual BackendKind kind() const noexcept = 0;

  // Opens a non-blocking TCP socket and starts connecting it. On failure
  // returns nullptr and sets *err to errno (EMFILE when out of descriptors).
  virtual Socket* connect(const sockaddr* addr, socklen_t len, SocketHandler* handler,
                          int* err) noexcept = 0;
  // At most one send outstanding per socket; data must stay valid until
  // on_sent. Partial writes are continued by the backend.
  virtual void send(Socket* s, const void* data, size_t len) noexcept = 0;
  // No callback for s after this returns. abort = reset (RST) instead of FIN.
  virtual void close(Socket* s, bool abort) noexcept = 0;

  // Starts watching fd, which stays the caller's: at most one watch per fd
  // at a time. Interest may be empty (nothing reported until it is set).
  // nullptr on failure, and then no callback ever comes for it.
  virtual FdWatch* watch_fd(int fd, FdWatcher* watcher, bool read, bool write) noexcept = 0;
  // Replaces the interest of a live watch; takes effect from the next wait().
  virtual void set_fd_interest(FdWatch* w, bool read, bool write) noexcept = 0;
  // No callback for w after this returns; w is invalid. The caller closes
  // the fd afterwards (not before: epoll must still see it to forget it).
  virtual void unwatch_fd(FdWatch* w) noexcept = 0;

  // Submits what this turn queued, waits up to timeout_ns (-1 = forever) for
  // completions and dispatches them. Returns completions dispatched or -errno.
  // Dispatching stops once budget_ns (-1: no limit) has passed since it
  // began: the completions not yet dispatched stay ready, has_pending() says
  // so, and the next wait() dispatches them first, in order, without
  // blocking. The owner runs its timers in between, so a burst of costly
  // completions (hundreds of TLS handshakes) holds a deadline for one
  // budget, not for the whole burst.
  virtual int wait(int64_t timeout_ns, int64_t budget_ns) noexcept = 0;
  int wait(int64_t timeout_ns) noexcept { return wait(timeout_ns, -1); }
  // Hands the operations queued so far to the kernel now, without waiting
  // for completions: a cancel's RST_STREAM reaches the socket within the
  // call that made it. Loop thread only. A no-op where operations go out
  // at once (epoll).
  virtual void submit() noexcept {}
  // Operations queued since the last wait(), or completions a spent budget
  // left undispatched: the host must call wait() soon even if poll_fd() is
  // quiet.
  virtual bool has_pending() const noexcept = 0;
  // Interrupts wait() from any thread.
  virtual void wake() noexcept = 0;
  // Readable when wait() has work: for embedding in a host event loop.
  virtual int poll_fd() const noexcept = 0;
};

struct BackendChoice {
  std::unique_ptr<Backend> backend;
  std::string why;  // why this backend was chosen, or why none could start
};

// `automatic` tries io_uring first and falls back to epoll on any setup failure.
BackendChoice make_backend(BackendKind requested) noexcept;

// Shared by both backends: a non-blocking, close-on-exec TCP socket with
// Nagle off, since every request is written in one piece.
int open_tcp_socket(int family) noexcept;

}  // namespace barrage
