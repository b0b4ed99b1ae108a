// The C ABI: argument checks, exception fences and handle plumbing around
// the C++ engine. Nothing here throws out; every failure is a brg_status.
#include "barrage.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "barrage_build_config.h"
#include "config_adapter.hpp"
#include "core/config.hpp"
#include "core/engine.hpp"
#include "engine_handle.hpp"
#include "request_adapter.hpp"

struct brg_config {
  barrage::EngineConfig cfg;
  std::string error;
};


using barrage::capi::set_error;
using barrage::capi::t_last_error;

namespace {

// brg_version() is the release's number (meson.build), brg_version_hex() the
// header's: the two once drifted apart (0.4.1 shipped a 0.4.0 header), so a
// release whose header says otherwise does not build.
constexpr bool release_is_header_version(std::string_view v) {
  uint32_t part[3] = {};
  size_t i = 0;
  for (int k = 0; k < 3; ++k) {
    if (i >= v.size() || v[i] < '0' || v[i] > '9') return false;
    while (i < v.size() && v[i] >= '0' && v[i] <= '9') part[k] = part[k] * 10 + uint32_t(v[i++] - '0');
    if (k < 2 && (i >= v.size() || v[i++] != '.')) return false;
  }
  return part[0] == BRG_VERSION_MAJOR && part[1] == BRG_VERSION_MINOR && part[2] == BRG_VERSION_PATCH;
}
static_assert(release_is_header_version(BRG_VERSION_STRING),
              "capi/barrage.h BRG_VERSION_* differ from meson.build's project version");

const char* getenv_adapter(const char* name) { return std::getenv(name); }

}  // namespace

extern "C" {

brg_config* brg_config_new(void) { return new (std::nothrow) brg_config; }

int brg_config_set_int(brg_config* c, brg_option opt, int64_t value) {
  if (!c) return BRG_E_INVALID;
  try {
    c->error = barrage::capi::config_set_int(c->cfg, int(opt), value);
    return c->error.empty() ? 0 : BRG_E_INVALID;
  } catch (...) {
    return BRG_E_NOMEM;
  }
}

int brg_config_set_str(brg_config* c, brg_option opt, const char* value) {
  if (!c) return BRG_E_INVALID;
  try {
    c->error = barrage::capi::config_set_str(c->cfg, int(opt), value);
    return c->error.empty() ? 0 : BRG_E_INVALID;
  } catch (...) {
    return BRG_E_NOMEM;
  }
}

int brg_config_from_env(brg_config* c) {
  if (!c) return BRG_E_INVALID;
  try {
    c->error = barrage::capi::config_from_env(c->cfg, getenv_adapter);
    return c->error.empty() ? 0 : BRG_E_INVALID;
  } catch (...) {
    return BRG_E_NOMEM;
  }
}

const char* brg_config_error(const brg_config* c) { return c ? c->error.c_str() : ""; }

void brg_config_free(brg_config* c) { delete c; }

int brg_engine_new(const brg_config* c, brg_engine** out) {
  if (!out) return set_error(BRG_E_INVALID, "out is NULL");
  *out = nullptr;
  try {
    barrage::EngineConfig defaults;
    auto* e = new brg_engine;
    std::string err;
    int rc = barrage::Engine::create(c ? c->cfg : defaults, e->store, &e->engine, &err);
    if (rc != 0) {
      delete e;
      return set_error(rc, err);
    }
    *out = e;
    return set_error(0, "");
  } catch (const std::bad_alloc&) {
    return set_error(BRG_E_NOMEM, "out of memory");
  } catch (const std::exception& ex) {
    return set_error(BRG_E_BACKEND, ex.what());
  } catch (...) {
    return set_error(BRG_E_BACKEND, "unknown failure");
  }
}

void brg_engine_free(brg_engine* e) { delete e; }

int brg_submit(brg_engine* e, const brg_request* req, uint64_t* id_out) {
  if (!e) return set_error(BRG_E_INVALID, "engine is NULL");
  try {
    std::string err;
    barrage::RequestSpec spec;
    barrage::capi::HeaderViews headers;
    int rc = barrage::capi::to_spec(req, &spec, &headers, &err);
    if (rc == 0) rc = e->engine->submit(spec, id_out, &err);
    return rc == 0 ? rc : set_error(rc, std::move(err));
  } catch (const std::bad_alloc&) {
    return set_error(BRG_E_NOMEM, "out of memory");
  } catch (...) {
    return set_error(BRG_E_INVALID, "internal error");
  }
}

int brg_cancel(brg_engine* e, uint64_t id) {
  if (!e) return set_error(BRG_E_INVALID, "engine is NULL");
  return e->engine->cancel(id);
}

int brg_cancel_group(brg_engine* e, uint64_t group) {
  if (!e || group == 0) return set_error(BRG_E_INVALID, e ? "group 0 is no group" : "engine is NULL");
  return e->engine->cancel_group(group);
}

int brg_group_deadline(brg_engine* e, uint64_t group, int64_t deadline_ms) {
  if (!e || group == 0 || deadline_ms < 0)
    return set_error(BRG_E_INVALID, !e ? "engine is NULL" : group == 0 ? "group 0 is no group" : "deadline_ms is negative");
  return e->engine->group_deadline(group, deadline_ms);
}

int brg_poll(brg_engine* e, int timeout_ms) {
  if (!e) return BRG_E_INVALID;
  return e->engine->poll(timeout_ms);
}

size_t brg_results(brg_engine* e, brg_result** out, size_t max) {
  if (!e) return 0;
  if (!out || max == 0) return 0;
  return e->engine->take_outcomes(max, [out](barrage::Outcome* o, size_t i) {
    barrage::capi::ResultHolder* h = barrage::capi::ResultHolder::from_outcome(o);
    h->seal();  // the result's strings point into the outcome it shares a block with
    out[i] = &h->pub;
  });
}

void brg_result_free(brg_result* r) {
  if (r) delete barrage::capi::ResultHolder::from_public(r);
}

int brg_backend_fd(const brg_engine* e) { return e ? e->engine->backend_fd() : BRG_E_INVALID; }
int brg_backend_timeout(const brg_engine* e) { return e ? e->engine->backend_timeout() : BRG_E_INVALID; }
int brg_start(brg_engine* e) { return e ? e->engine->start() : BRG_E_INVALID; }
int brg_results_fd(const brg_engine* e) { return e ? e->engine->results_fd() : BRG_E_INVALID; }

int brg_stats(const brg_engine* e, struct brg_stats* out) {
  if (!e || !out || out->size < sizeof(uint32_t)) return BRG_E_INVALID;
  barrage::capi::copy_stats(e->engine->stats(), out);
  return 0;
}

const char* brg_strerror(int status) {
  switch (status) {
#define BRG_STRERROR_CASE_(name, code, text) \
  case code:                                 \
    return text;
    BRG_STATUS_MAP(BRG_STRERROR_CASE_)
#undef BRG_STRERROR_CASE_
  }
  return "unknown status";
}

const char* brg_status_name(int status) {
  switch (status) {
#define BRG_NAME_CASE_(name, code, text) \
  case code:                             \
    return "BRG_E_" #name;
    BRG_STATUS_MAP(BRG_NAME_CASE_)
#undef BRG_NAME_CASE_
  }
  return "BRG_E_UNKNOWN";
}

const char* brg_last_error(void) { return t_last_error.c_str(); }

const char* brg_version(void) { return BRG_VERSION_STRING; }

uint32_t brg_version_hex(void) { return BRG_VERSION_HEX; }

}  // extern "C"
