// brg_batch_run: the batch runner (batch/, a client of this same C ABI)
// behind its entry point. Checks the options, fences exceptions and reports
// through brg_last_error.
#include <cstdlib>
#include <new>
#include <string>

#include "barrage.h"
#include "batch/batch_options.hpp"
#include "batch/batch_runner.hpp"
#include "engine_handle.hpp"

namespace {

const char* getenv_adapter(const char* name) { return std::getenv(name); }

}  // namespace

extern "C" {

int brg_batch_run(brg_engine* e, const brg_batch_options* opts, brg_batch_progress_fn progress, void* user,
                  brg_batch_progress* final_out) {
  using barrage::capi::set_error;
  if (!e) return set_error(BRG_E_INVALID, "engine is NULL");
  try {
    barrage::BatchSettings settings;
    std::string err = barrage::settings_from_options(opts, getenv_adapter, &settings);
    if (!err.empty()) return set_error(BRG_E_INVALID, std::move(err));
    int rc = barrage::run_batch(e, settings, progress, user, final_out, &err);
    return set_error(rc, rc == 0 ? std::string() : std::move(err));
  } catch (const std::bad_alloc&) {
    return set_error(BRG_E_NOMEM, "out of memory");
  } catch (const std::exception& ex) {
    return set_error(BRG_E_INVALID, ex.what());
  } catch (...) {
    return set_error(BRG_E_INVALID, "unknown failure");
  }
}

}  // extern "C"
