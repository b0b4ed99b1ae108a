// One table describes every option: its number, field, range and
// environment names, so setters, validation and env parsing cannot drift.
#include "core/config.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string_view>

#include "barrage.h"

namespace barrage {
namespace {

enum class Unit { plain, seconds_to_ms, boolean, backend };

struct IntOption {
  int option;
  int64_t EngineConfig::*field;
  int64_t min, max;
  const char* env;         // BARRAGE_ name
  const char* alias;       // common wrapper name, or nullptr
  Unit alias_unit;         // how the alias is written (seconds for LLM_RATE_PERIOD)
};

constexpr int64_t kMax = INT64_MAX / 2;

const IntOption kIntOptions[] = {
    {BRG_OPT_MAX_INFLIGHT, &EngineConfig::max_inflight, 1, 1 << 24, "BARRAGE_MAX_INFLIGHT", "MAX_CONCURRENT_LLM", Unit::plain},
    {BRG_OPT_MAX_CONNS_PER_HOST, &EngineConfig::max_conns_per_host, 0, 1 << 24, "BARRAGE_MAX_CONNS_PER_HOST", nullptr, Unit::plain},
    {BRG_OPT_RATE_LIMIT, &EngineConfig::rate_limit, 0, kMax, "BARRAGE_RATE_LIMIT", "LLM_RATE_LIMIT", Unit::plain},
    {BRG_OPT_RATE_PERIOD_MS, &EngineConfig::rate_period_ms, 1, kMax, "BARRAGE_RATE_PERIOD_MS", "LLM_RATE_PERIOD", Unit::seconds_to_ms},
    {BRG_OPT_RATE_BURST, &EngineConfig::rate_burst, 0, kMax, "BARRAGE_RATE_BURST", nullptr, Unit::plain},
    {BRG_OPT_TOKENS_PER_MINUTE, &EngineConfig::tokens_per_minute, 0, kMax, "BARRAGE_TOKENS_PER_MINUTE", nullptr, Unit::plain},
    {BRG_OPT_TIMEOUT_MS, &EngineConfig::timeout_ms, 1, kMax, "BARRAGE_TIMEOUT_MS", "ASYNC_LLM_TIMEOUT", Unit::seconds_to_ms},
    {BRG_OPT_CONNECT_TIMEOUT_MS, &EngineConfig::connect_timeout_ms, 1, kMax, "BARRAGE_CONNECT_TIMEOUT_MS", nullptr, Unit::plain},
    {BRG_OPT_MAX_RETRIES, &EngineConfig::max_retries, 0, 1000, "BARRAGE_MAX_RETRIES", nullptr, Unit::plain},
    {BRG_OPT_BACKOFF_BASE_MS, &EngineConfig::backoff_base_ms, 0, kMax, "BARRAGE_BACKOFF_BASE_MS", nullptr, Unit::plain},
    {BRG_OPT_BACKOFF_MAX_MS, &EngineConfig::backoff_max_ms, 0, kMax, "BARRAGE_BACKOFF_MAX_MS", nullptr, Unit::plain},
    {BRG_OPT_BACKEND, &EngineConfig::backend, 0, 2, "BARRAGE_BACKEND", nullptr, Unit::plain},
    {BRG_OPT_VERIFY_PEER, &EngineConfig::verify_peer, 0, 1, "BARRAGE_VERIFY_PEER", nullptr, Unit::boolean},
    {BRG_OPT_MAX_RESPONSE_BYTES, &EngineConfig::max_response_bytes, 1, kMax, "BARRAGE_MAX_RESPONSE_BYTES", nullptr, Unit::plain},
    {BRG_OPT_CACHE_TTL_S, &EngineConfig::cache_ttl_s, 0, kMax, "BARRAGE_CACHE_TTL_S", nullptr, Unit::plain},
    {BRG_OPT_ALLOW_HTTP, &EngineConfig::allow_http, 0, 1, "BARRAGE_ALLOW_HTTP", nullptr, Unit::boolean},
    {BRG_OPT_MAX_PENDING, &EngineConfig::max_pending, 1, kMax, "BARRAGE_MAX_PENDING", nullptr, Unit::plain},
    {BRG_OPT_MAX_HEADER_BYTES, &EngineConfig::max_header_bytes, 256, 1 << 24, "BARRAGE_MAX_HEADER_BYTES", nullptr, Unit::plain},
    {BRG_OPT_IDLE_TIMEOUT_MS, &EngineConfig::idle_timeout_ms, 1, kMax, "BARRAGE_IDLE_TIMEOUT_MS", nullptr, Unit::plain},
    {BRG_OPT_TOKENS_BURST, &EngineConfig::tokens_burst, 0, kMax, "BARRAGE_TOKENS_BURST", nullptr, Unit::plain},
    {BRG_OPT_BREAKER_THRESHOLD, &EngineConfig::breaker_threshold, 0, 1 << 30, "BARRAGE_BREAKER_THRESHOLD", nullptr, Unit::plain},
    {BRG_OPT_BREAKER_PAUSE_MS, &EngineConfig::breaker_pause_ms, 1, kMax, "BARRAGE_BREAKER_PAUSE_MS", nullptr, Unit::plain},
    {BRG_OPT_TLS_RESUME, &EngineConfig::tls_resume, 0, 1, "BARRAGE_TLS_RESUME", nullptr, Unit::boolean},
    {BRG_OPT_MAX_HANDSHAKES, &EngineConfig::max_handshakes, 1, 1 << 24, "BARRAGE_MAX_HANDSHAKES", nullptr, Unit::plain},
    {BRG_OPT_FIRST_TOKEN_TIMEOUT_MS, &EngineConfig::first_token_timeout_ms, 0, kMax, "BARRAGE_FIRST_TOKEN_TIMEOUT_MS", nullptr, Unit::plain},
    {BRG_OPT_HTTP_VERSION, &EngineConfig::http_version, 0, 2, "BARRAGE_HTTP_VERSION", nullptr, Unit::plain},
    {BRG_OPT_STREAM_IDLE_TIMEOUT_MS, &EngineConfig::stream_idle_timeout_ms, 0, kMax, "BARRAGE_STREAM_IDLE_TIMEOUT_MS", nullptr, Unit::plain},
};

struct StrOption {
  int option;
  std::string EngineConfig::*field;
  const char* env;
  // The names curl and Python's requests read, lower case first as they do.
  const char* alias = nullptr;
  const char* alias_upper = nullptr;
};
const StrOption kStrOptions[] = {
    {BRG_OPT_CA_FILE, &EngineConfig::ca_file, "BARRAGE_CA_FILE"},
    {BRG_OPT_CACHE_PATH, &EngineConfig::cache_path, "BARRAGE_CACHE_PATH"},
    {BRG_OPT_RETRY_STATUSES, &EngineConfig::retry_statuses, "BARRAGE_RETRY_STATUSES"},
    {BRG_OPT_PROXY, &EngineConfig::proxy, "BARRAGE_PROXY", "https_proxy", "HTTPS_PROXY"},
    {BRG_OPT_NO_PROXY, &EngineConfig::no_proxy, "BARRAGE_NO_PROXY", "no_proxy", "NO_PROXY"},
    {BRG_OPT_DNS_SERVERS, &EngineConfig::dns_servers, "BARRAGE_DNS_SERVERS"},
};

const IntOption* find_int(int option) {
  for (const auto& o : kIntOptions)
    if (o.option == option) return &o;
  return nullptr;
}

std::string range_error(const IntOption& o, int64_t v) {
  return "option " + std::string(o.env + 8) + " = " + std::to_string(v) + " is out of range [" +
         std::to_string(o.min) + ", " + std::to_string(o.max) + "]";
}

// Parses an environment value; seconds may be fractional ("0.5").
bool parse_env(std::string_view text, Unit unit, int64_t* out) {
  std::string s(text);
  if (unit == Unit::boolean) {
    if (s == "1" || s == "true" || s == "yes" || s == "on") return *out = 1, true;
    if (s == "0" || s == "false" || s == "no" || s == "off") return *out = 0, true;
    return false;
  }
  if (unit == Unit::backend) {
    if (s == "auto") return *out = BRG_BACKEND_AUTO, true;
    if (s == "io_uring" || s == "uring") return *out = BRG_BACKEND_IO_URING, true;
    if (s == "epoll") return *out = BRG_BACKEND_EPOLL, true;
    return false;
  }
  errno = 0;
  char* end = nullptr;
  if (unit == Unit::seconds_to_ms) {
    double d = std::strtod(s.c_str(), &end);
    if (errno || end == s.c_str() || *end || !std::isfinite(d) || d < 0 || d > 1e12) return false;
    *out = int64_t(std::llround(d * 1000.0));
    return true;
  }
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno || end == s.c_str() || *end) return false;
  *out = v;
  return true;
}

}  // namespace

std::string config_set_int(EngineConfig& c, int option, int64_t value) {
  const IntOption* o = find_int(option);
  if (!o) return "option " + std::to_string(option) + " is not an integer option";
  if (value < o->min || value > o->max) return range_error(*o, value);
  c.*(o->field) = value;
  return "";
}

std::string config_set_str(EngineConfig& c, int option, const char* value) {
  for (const auto& o : kStrOptions)
    if (o.option == option) {
      c.*(o.field) = value ? value : "";
      return "";
    }
  return "option " + std::to_string(option) + " is not a string option";
}

std::string config_from_env(EngineConfig& c, const char* (*getenv_fn)(const char*)) {
  for (const auto& o : kIntOptions) {
    // BARRAGE_* wins over the wrapper alias; the alias may use seconds.
    const char* name = o.env;
    Unit unit = o.option == BRG_OPT_BACKEND ? Unit::backend
                : o.option == BRG_OPT_VERIFY_PEER || o.option == BRG_OPT_ALLOW_HTTP ? Unit::boolean
                                                                                     : Unit::plain;
    const char* v = getenv_fn(o.env);
    if ((!v || !*v) && o.alias) {
      v = getenv_fn(o.alias);
      name = o.alias;
      unit = o.alias_unit;
    }
    if (!v || !*v) continue;
    int64_t parsed;
    if (!parse_env(v, unit, &parsed))
      return std::string("environment variable ") + name + "='" + v + "' is not a valid " +
             (unit == Unit::seconds_to_ms ? "number of seconds"
              : unit == Unit::boolean     ? "boolean (1/0, true/false)"
              : unit == Unit::backend     ? "backend (auto, io_uring, epoll)"
                                          : "integer");
    std::string err = config_set_int(c, o.option, parsed);
    if (!err.empty()) return std::string("environment variable ") + name + ": " + err;
  }
  for (const auto& o : kStrOptions) {
    const char* v = getenv_fn(o.env);
    if (!v && o.alias) v = getenv_fn(o.alias);
    if (!v && o.alias_upper) v = getenv_fn(o.alias_upper);
    if (v) c.*(o.field) = v;
  }
  return "";
}

}  // namespace barrage
