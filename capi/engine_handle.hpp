// Internal to the C ABI (not installed): the handle behind brg_engine and
// the per-thread error text, shared by every file of extern "C" entry
// points (barrage.cpp, batch_api.cpp).
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "core/engine.hpp"
#include "result_adapter.hpp"

struct brg_engine {
  barrage::capi::ResultStore store;  // before the engine: outlives it
  std::unique_ptr<barrage::Engine> engine;
};

namespace barrage::capi {

// Why the last call on this thread failed: the errno/dlerror pattern, the
// one piece of per-thread state, because brg_submit may run on any thread.
// inline: one object for the whole library, whichever file sets it.
inline thread_local std::string t_last_error;

inline int set_error(int status, std::string msg) noexcept {
  try {
    t_last_error = std::move(msg);
  } catch (...) {
  }
  return status;
}

}  // namespace barrage::capi
