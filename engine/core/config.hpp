// Engine settings: defaults, validation of each option, and the environment
// names (BARRAGE_* plus the names common Python wrappers already use).
#pragma once

#include <cstdint>
#include <string>

namespace barrage {

struct EngineConfig {
  int64_t max_inflight = 256;
  int64_t max_conns_per_host = 0;  // 0: only max_inflight bounds it
  int64_t rate_limit = 0;
  int64_t rate_period_ms = 60000;
  int64_t rate_burst = 0;
  int64_t tokens_per_minute = 0;
  int64_t timeout_ms = 600000;
  int64_t connect_timeout_ms = 10000;
  int64_t max_retries = 2;
  int64_t backoff_base_ms = 500;
  int64_t backoff_max_ms = 30000;
  int64_t backend = 0;  // BackendKind
  std::string ca_file;
  int64_t verify_peer = 1;
  int64_t max_response_bytes = int64_t(64) << 20;
  std::string cache_path;
  int64_t cache_ttl_s = 0;
  int64_t allow_http = 0;
  int64_t max_pending = 1 << 20;
  int64_t max_header_bytes = 64 * 1024;
  int64_t idle_timeout_ms = 60000;
  int64_t tokens_burst = 0;
  std::string retry_statuses;  // "" = the default set
  int64_t breaker_threshold = 20;
  int64_t breaker_pause_ms = 5000;
  int64_t tls_resume = 1;
  int64_t max_handshakes = 64;
  int64_t first_token_timeout_ms = 0;  // 0: none
  int64_t stream_idle_timeout_ms = 0;  // 0: none
  int64_t http_version = 0;            // 0 ALPN chooses, 1 HTTP/1.1, 2 HTTP/2
  std::string proxy;                   // HTTPS_PROXY form; "" = direct
  std::string no_proxy;                // NO_PROXY form
  std::string dns_servers;             // "" = /etc/resolv.conf
};

// Option numbers are brg_option values. Each returns "" or why the value
// was refused (the config is unchanged then).
std::string config_set_int(EngineConfig& c, int option, int64_t value);
std::string config_set_str(EngineConfig& c, int option, const char* value);
// getenv is a function argument so tests can supply their own environment.
std::string config_from_env(EngineConfig& c, const char* (*getenv_fn)(const char*));

}  // namespace barrage
