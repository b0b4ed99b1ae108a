// Backend selection and the socket set-up both backends share.
#include "loop/backend.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>

#include "barrage_build_config.h"
#include "loop/epoll_backend.hpp"
#if BRG_HAVE_IO_URING
#include "loop/uring_backend.hpp"
#endif

namespace barrage {

const char* backend_name(BackendKind kind) noexcept {
  switch (kind) {
    case BackendKind::automatic: return "auto";
    case BackendKind::io_uring: return "io_uring";
    case BackendKind::epoll: return "epoll";
  }
  return "unknown";
}

BackendChoice make_backend(BackendKind requested) noexcept {
  BackendChoice choice;
  std::string uring_err;
  if (requested != BackendKind::epoll) {
#if BRG_HAVE_IO_URING
    choice.backend = make_uring_backend(&uring_err);
#else
    uring_err = "built without io_uring support";
#endif
    if (choice.backend) {
      choice.why = "io_uring available";
      return choice;
    }
    if (requested == BackendKind::io_uring) {
      choice.why = "io_uring unavailable: " + uring_err;
      return choice;
    }
  }
  std::string epoll_err;
  choice.backend = make_epoll_backend(&epoll_err);
  if (!choice.backend)
    choice.why = "epoll unavailable: " + epoll_err;
  else if (requested == BackendKind::epoll)
    choice.why = "epoll requested";
  else
    choice.why = "io_uring unavailable (" + uring_err + "), fell back to epoll";
  return choice;
}

int open_tcp_socket(int family) noexcept {
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

}  // namespace barrage
