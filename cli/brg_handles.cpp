// Helpers that turn libbarrage status codes into messages a user can act on.
#include "brg_handles.hpp"

#include <fmt/format.h>

namespace barrage::cli {

std::string backend_name(int backend) {
  switch (backend) {
    case BRG_BACKEND_AUTO:
      return "auto";
    case BRG_BACKEND_IO_URING:
      return "io_uring";
    case BRG_BACKEND_EPOLL:
      return "epoll";
  }
  return fmt::format("unknown ({})", backend);
}

std::string describe_status(int status, const char* detail) {
  std::string s = fmt::format("{} ({})", brg_status_name(status), brg_strerror(status));
  if (detail != nullptr && detail[0] != '\0') s += fmt::format(": {}", detail);
  return s;
}

EnginePtr make_engine(const brg_config* cfg, std::string* err) {
  brg_engine* raw = nullptr;
  int rc = brg_engine_new(cfg, &raw);
  if (rc != 0) {
    *err = "cannot create engine: " + describe_status(rc, brg_last_error());
    return nullptr;
  }
  return EnginePtr(raw);
}

struct brg_stats read_stats(const brg_engine* e) {
  struct brg_stats s {};
  s.size = sizeof(s);
  brg_stats(e, &s);
  return s;
}

}  // namespace barrage::cli
