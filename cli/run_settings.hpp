// The settings of `barrage run` that come in layers: the environment (read
// by brg_config_from_env, plus the endpoint and deadline the engine does not
// know about), then a TOML file (--config, with per-endpoint tables), then
// flags. Each layer is a RunSettings whose unset fields leave the layer
// below alone; merge() stacks them and apply() hands the result to the C ABI.
#pragma once

#include <barrage.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace barrage::cli {

struct Limits {
  std::optional<int64_t> concurrency;       // BRG_OPT_MAX_INFLIGHT
  std::optional<int64_t> rps;               // BRG_OPT_RATE_LIMIT, requests per rate period
  std::optional<double> rate_period_s;      // BRG_OPT_RATE_PERIOD_MS
  std::optional<int64_t> burst;             // BRG_OPT_RATE_BURST
  std::optional<int64_t> tpm;               // BRG_OPT_TOKENS_PER_MINUTE
  std::optional<double> timeout_s;          // BRG_OPT_TIMEOUT_MS, per attempt
  std::optional<double> deadline_s;         // brg_batch_options.deadline_ms, per request
  std::optional<int64_t> retries;           // BRG_OPT_MAX_RETRIES
  std::optional<double> connect_timeout_s;  // BRG_OPT_CONNECT_TIMEOUT_MS
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct RunSettings {
  std::optional<std::string> endpoint;
  std::optional<std::string> api_key_env;
  HeaderList headers;  // a later layer replaces a header of the same name
  Limits limits;
  // Where each value set in this layer came from ("flag", "config FILE",
  // "environment"), by key name; merge() keeps the winner's.
  std::map<std::string, std::string> source;
};

// A --config file: the top-level keys and the [endpoints."URL"] tables.
struct ConfigFile {
  RunSettings top;
  std::map<std::string, RunSettings> endpoints;  // by the URL as written
};

// Reads a TOML file. Unknown keys, wrong types and out-of-range values are
// errors (*err names the file and key); the caller exits with status 2.
bool load_config_file(const std::string& path, ConfigFile* out, std::string* err);

// The table of cfg that applies to endpoint (same URL once trailing slashes
// are dropped and scheme and host are lower-cased, or same origin), or null.
const RunSettings* endpoint_table(const ConfigFile& cfg, const std::string& endpoint);

// Values set in `over` win; headers merge by case-insensitive name. A layer
// that sets rps without rate_period means "per second", so the period from a
// lower layer does not silently turn it into a per-minute limit.
void merge(RunSettings* base, const RunSettings& over);

// The layer the environment adds beyond brg_config_from_env: the endpoint
// ($OPENAI_BASE_URL) and the per-request deadline ($BARRAGE_DEADLINE_MS), plus
// the engine limits read back for display (see environment_layer).
// Returns false with *err when BARRAGE_DEADLINE_MS does not parse.
bool environment_layer(RunSettings* out, std::string* err);

// Applies the limits to cfg. Returns false with *err on a value the library
// rejects.
bool apply_limits(const Limits& l, brg_config* cfg, std::string* err);

// "Name: value" from --header. Returns false with *err when it has no colon
// or a bad name.
bool parse_header_flag(const std::string& text, std::pair<std::string, std::string>* out,
                       std::string* err);

// True for header names that carry credentials (Authorization, api-key,
// x-api-key): these may not come from argv.
bool is_secret_header(const std::string& name);

// scheme://host[:port] of a URL, lower-cased; "" when it has no "://".
std::string url_origin(const std::string& url);

// True when the URL's host is localhost or a loopback address.
bool is_loopback_url(const std::string& url);

}  // namespace barrage::cli
