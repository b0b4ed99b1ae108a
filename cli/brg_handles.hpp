// Owning handles and small helpers around libbarrage's C ABI, shared by the
// subcommands. The CLI is a client of capi/barrage.h only: nothing here may
// include an engine/ header.
#pragma once

#include <barrage.h>

#include <memory>
#include <string>

namespace barrage::cli {

struct ConfigFree {
  void operator()(brg_config* c) const { brg_config_free(c); }
};
struct EngineFree {
  void operator()(brg_engine* e) const { brg_engine_free(e); }
};
struct ResultFree {
  void operator()(brg_result* r) const { brg_result_free(r); }
};

using ConfigPtr = std::unique_ptr<brg_config, ConfigFree>;
using EnginePtr = std::unique_ptr<brg_engine, EngineFree>;
using ResultPtr = std::unique_ptr<brg_result, ResultFree>;

// "io_uring", "epoll", "auto" or "unknown (N)".
std::string backend_name(int backend);

// "BRG_E_TLS (TLS handshake ...): detail" for a failed call; detail is
// brg_last_error() or the config's error text when there is one.
std::string describe_status(int status, const char* detail);

// Creates an engine from cfg. On failure returns nullptr and sets *err to a
// message that names the status and the library's reason.
EnginePtr make_engine(const brg_config* cfg, std::string* err);

// The engine's statistics; size is filled in, so callers need not.
struct brg_stats read_stats(const brg_engine* e);

}  // namespace barrage::cli
