// The reactor's one interface: a proactor (connect, send, receive, close,
// wake) that both the io_uring and the epoll backend implement with the same
// observable behaviour. It knows sockets and bytes, nothing of TLS or HTTP.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

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

  // Submits what this turn queued, waits up to timeout_ns (-1 = forever) for
  // completions and dispatches them. Returns completions dispatched or -errno.
  virtual int wait(int64_t timeout_ns) noexcept = 0;
  // Operations queued since the last wait(): the host must call wait() soon
  // even if poll_fd() is quiet.
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
