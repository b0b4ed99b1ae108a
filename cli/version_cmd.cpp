// `barrage version`: the library version and which reactor backend this
// machine gives libbarrage, which is the first question when timings differ
// between machines (io_uring may be missing or forbidden by a sandbox).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <string>

#include "brg_handles.hpp"
#include "commands.hpp"

namespace barrage::cli {
namespace {

// Creates an engine on the given backend; returns the backend in use, or a
// negative status with *why set.
int probe_backend(int backend, std::string* why) {
  ConfigPtr cfg(brg_config_new());
  if (!cfg) {
    *why = "out of memory";
    return BRG_E_NOMEM;
  }
  int rc = brg_config_set_int(cfg.get(), BRG_OPT_BACKEND, backend);
  if (rc != 0) {
    *why = describe_status(rc, brg_config_error(cfg.get()));
    return rc;
  }
  EnginePtr e = make_engine(cfg.get(), why);
  if (!e) return BRG_E_BACKEND;
  return read_stats(e.get()).backend;
}

int run_version() {
  fmt::print("barrage {} (libbarrage {}, built against header {}.{}.{})\n", brg_version(),
             brg_version(), BRG_VERSION_MAJOR, BRG_VERSION_MINOR, BRG_VERSION_PATCH);
  if (brg_version_hex() != BRG_VERSION_HEX) {
    fmt::print(stderr, "warning: libbarrage at run time is 0x{:06x}, the header 0x{:06x}\n",
               brg_version_hex(), BRG_VERSION_HEX);
  }
  std::string why;
  int picked = probe_backend(BRG_BACKEND_AUTO, &why);
  if (picked < 0) {
    fmt::print(stderr, "barrage version: {}\n", why);
    return 1;
  }
  fmt::print("backend: {} (what --backend auto picks here)\n", backend_name(picked));
  for (int b : {BRG_BACKEND_IO_URING, BRG_BACKEND_EPOLL}) {
    why.clear();
    int got = probe_backend(b, &why);
    fmt::print("  {:<9} {}\n", backend_name(b) + ":",
               got >= 0 ? "available" : "unavailable: " + why);
  }
  return 0;
}

}  // namespace

Command add_version_command(CLI::App& parent) {
  CLI::App* app = parent.add_subcommand(
      "version",
      "Print the library version and the reactor backend (io_uring or epoll) in use here");
  app->footer(
      "Tries both backends; io_uring can be missing (old kernel) or forbidden (seccomp, "
      "containers).");
  return {app, [] { return run_version(); }};
}

}  // namespace barrage::cli
