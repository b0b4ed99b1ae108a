// Layered settings of `barrage run`: the TOML config file (Debian's
// header-only cpptoml), merging, and the hand-over to brg_config.
#include "run_settings.hpp"

#include <cpptoml.h>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace barrage::cli {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// RFC 9110 token characters: what a header name may be made of.
bool is_token(const std::string& s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (std::isalnum(c) != 0) continue;
    if (std::strchr("!#$%&'*+-.^_`|~", c) == nullptr) return false;
  }
  return true;
}

bool is_env_name(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0])) != 0) return false;
  return std::all_of(s.begin(), s.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

void set_header(HeaderList* list, const std::string& name, const std::string& value) {
  std::string key = lower(name);
  for (auto& h : *list) {
    if (lower(h.first) == key) {
      h.second = value;
      return;
    }
  }
  list->emplace_back(name, value);
}

// Reads one table (the top level or an [endpoints."URL"] table) into s.
// `where` prefixes key names in messages ("" or `endpoints."URL".`).
class TableReader {
 public:
  TableReader(std::string path, std::string where)
      : path_(std::move(path)), where_(std::move(where)) {}

  bool read(const cpptoml::table& t, bool top, RunSettings* s, ConfigFile* cfg, std::string* err) {
    std::string src = "config " + path_;
    for (const auto& [key, node] : t) {
      bool ok = true;
      if (key == "endpoint" && top) {
        ok = string_value(key, node, &s->endpoint);
      } else if (key == "api_key_env") {
        ok = string_value(key, node, &s->api_key_env) && check_env_name(key, *s->api_key_env);
      } else if (key == "concurrency") {
        ok = int_value(key, node, 1, int64_t{1} << 24, &s->limits.concurrency);
      } else if (key == "rps") {
        ok = int_value(key, node, 0, INT64_MAX / 2, &s->limits.rps);
      } else if (key == "burst") {
        ok = int_value(key, node, 0, INT64_MAX / 2, &s->limits.burst);
      } else if (key == "tpm") {
        ok = int_value(key, node, 0, INT64_MAX / 2, &s->limits.tpm);
      } else if (key == "retries") {
        ok = int_value(key, node, 0, 1000, &s->limits.retries);
      } else if (key == "rate_period") {
        ok = seconds_value(key, node, false, &s->limits.rate_period_s);
      } else if (key == "timeout") {
        ok = seconds_value(key, node, false, &s->limits.timeout_s);
      } else if (key == "deadline") {
        ok = seconds_value(key, node, true, &s->limits.deadline_s);
      } else if (key == "connect_timeout") {
        ok = seconds_value(key, node, false, &s->limits.connect_timeout_s);
      } else if (key == "headers") {
        ok = headers_value(key, node, s);
      } else if (key == "endpoints" && top) {
        ok = endpoints_value(key, node, cfg, err);
        if (!ok) return false;
      } else {
        *err = fmt::format(
            "config {}: unknown key '{}{}' (known: endpoint, concurrency, rps, rate_period, "
            "burst, tpm, timeout, deadline, retries, connect_timeout, api_key_env, headers{})",
            path_, where_, key,
            top ? ", [endpoints.\"URL\"]" : "; endpoint belongs at the top level");
        return false;
      }
      if (!ok) {
        *err = error_;
        return false;
      }
      if (key != "endpoints" && key != "headers") s->source[key] = src;
    }
    return true;
  }

 private:
  bool fail(const std::string& key, const std::string& what) {
    error_ = fmt::format("config {}: '{}{}' {}", path_, where_, key, what);
    return false;
  }

  bool string_value(const std::string& key, const std::shared_ptr<cpptoml::base>& node,
                    std::optional<std::string>* out) {
    auto v = node->as<std::string>();
    if (!v) return fail(key, "must be a string");
    *out = v->get();
    return true;
  }

  bool check_env_name(const std::string& key, const std::string& v) {
    if (is_env_name(v)) return true;
    return fail(key, "must name an environment variable (letters, digits, _), not hold a key");
  }

  bool int_value(const std::string& key, const std::shared_ptr<cpptoml::base>& node, int64_t lo,
                 int64_t hi, std::optional<int64_t>* out) {
    auto v = node->as<int64_t>();
    if (!v) return fail(key, "must be an integer");
    if (v->get() < lo || v->get() > hi)
      return fail(key, fmt::format("= {} is out of range [{}, {}]", v->get(), lo, hi));
    *out = v->get();
    return true;
  }

  bool seconds_value(const std::string& key, const std::shared_ptr<cpptoml::base>& node,
                     bool zero_ok, std::optional<double>* out) {
    auto v = node->as<double>();  // cpptoml converts integers too
    if (!v) return fail(key, "must be a number of seconds");
    double d = v->get();
    if (!std::isfinite(d) || d < 0 || (d == 0 && !zero_ok) || d > 1e9)
      return fail(key,
                  zero_ok ? "must be a number of seconds >= 0" : "must be a number of seconds > 0");
    *out = d;
    return true;
  }

  bool headers_value(const std::string& key, const std::shared_ptr<cpptoml::base>& node,
                     RunSettings* s) {
    if (!node->is_table()) return fail(key, "must be a table of \"Name\" = \"value\" strings");
    for (const auto& [name, value] : *node->as_table()) {
      auto v = value->as<std::string>();
      if (!v) return fail(key + "." + name, "must be a string");
      if (!is_token(name)) return fail(key + "." + name, "is not a valid header name");
      set_header(&s->headers, name, v->get());
    }
    return true;
  }

  bool endpoints_value(const std::string& key, const std::shared_ptr<cpptoml::base>& node,
                       ConfigFile* cfg, std::string* err) {
    if (!node->is_table()) {
      *err = fmt::format("config {}: '{}' must hold tables such as [endpoints.\"https://host\"]",
                         path_, key);
      return false;
    }
    for (const auto& [url, sub] : *node->as_table()) {
      if (!sub->is_table() || url.find("://") == std::string::npos) {
        *err = fmt::format(
            "config {}: endpoints.\"{}\" must be a table named by a URL such as "
            "[endpoints.\"https://api.openai.com\"]",
            path_, url);
        return false;
      }
      TableReader r(path_, fmt::format("endpoints.\"{}\".", url));
      RunSettings es;
      if (!r.read(*sub->as_table(), false, &es, cfg, err)) return false;
      cfg->endpoints[url] = std::move(es);
    }
    return true;
  }

  std::string path_, where_, error_;
};

std::string normalize_url(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  size_t sep = url.find("://");
  if (sep == std::string::npos) return url;
  size_t path = url.find('/', sep + 3);
  std::string head = lower(url.substr(0, path));
  return path == std::string::npos ? head : head + url.substr(path);
}

bool set_int(brg_config* cfg, brg_option opt, int64_t v, const char* what, std::string* err) {
  if (brg_config_set_int(cfg, opt, v) == 0) return true;
  *err = fmt::format("{} = {}: {}", what, v, brg_config_error(cfg));
  return false;
}

int64_t to_ms(double s) { return static_cast<int64_t>(std::llround(s * 1000.0)); }

// Environment names of the limits, as capi/barrage.h lists them: the
// BARRAGE_ name wins over the wrapper alias; BARRAGE_*_MS are milliseconds,
// the aliases LLM_RATE_PERIOD and ASYNC_LLM_TIMEOUT seconds.
struct EnvLimit {
  const char* key;
  const char* name;
  bool name_in_ms;
  const char* alias;
  std::optional<int64_t> Limits::*integer;
  std::optional<double> Limits::*seconds;
};
const EnvLimit kEnvLimits[] = {
    {"concurrency", "BARRAGE_MAX_INFLIGHT", false, "MAX_CONCURRENT_LLM", &Limits::concurrency,
     nullptr},
    {"rps", "BARRAGE_RATE_LIMIT", false, "LLM_RATE_LIMIT", &Limits::rps, nullptr},
    {"rate_period", "BARRAGE_RATE_PERIOD_MS", true, "LLM_RATE_PERIOD", nullptr,
     &Limits::rate_period_s},
    {"burst", "BARRAGE_RATE_BURST", false, nullptr, &Limits::burst, nullptr},
    {"tpm", "BARRAGE_TOKENS_PER_MINUTE", false, nullptr, &Limits::tpm, nullptr},
    {"timeout", "BARRAGE_TIMEOUT_MS", true, "ASYNC_LLM_TIMEOUT", nullptr, &Limits::timeout_s},
    {"retries", "BARRAGE_MAX_RETRIES", false, nullptr, &Limits::retries, nullptr},
    {"connect_timeout", "BARRAGE_CONNECT_TIMEOUT_MS", true, nullptr, nullptr,
     &Limits::connect_timeout_s},
};

}  // namespace

bool load_config_file(const std::string& path, ConfigFile* out, std::string* err) {
  std::shared_ptr<cpptoml::table> t;
  try {
    t = cpptoml::parse_file(path);
  } catch (const cpptoml::parse_exception& e) {
    // cpptoml says "Failed to parse value type at line 3" or "... could not be opened".
    *err = fmt::format("config {}: {}", path, e.what());
    return false;
  }
  TableReader r(path, "");
  return r.read(*t, true, &out->top, out, err);
}

const RunSettings* endpoint_table(const ConfigFile& cfg, const std::string& endpoint) {
  std::string want = normalize_url(endpoint);
  std::string origin = url_origin(endpoint);
  for (const auto& [url, s] : cfg.endpoints) {
    if (normalize_url(url) == want) return &s;
  }
  for (const auto& [url, s] : cfg.endpoints) {
    if (normalize_url(url) == origin) return &s;
  }
  return nullptr;
}

void merge(RunSettings* base, const RunSettings& over) {
  auto take = [&](auto& dst, const auto& src, const char* key) {
    if (!src) return;
    dst = src;
    auto it = over.source.find(key);
    if (it != over.source.end()) base->source[key] = it->second;
  };
  take(base->endpoint, over.endpoint, "endpoint");
  take(base->api_key_env, over.api_key_env, "api_key_env");
  const Limits& o = over.limits;
  Limits& b = base->limits;
  take(b.concurrency, o.concurrency, "concurrency");
  take(b.rps, o.rps, "rps");
  take(b.rate_period_s, o.rate_period_s, "rate_period");
  if (o.rps && !o.rate_period_s) {
    b.rate_period_s = 1.0;
    auto it = over.source.find("rps");
    base->source["rate_period"] = it != over.source.end() ? it->second : "";
  }
  take(b.burst, o.burst, "burst");
  take(b.tpm, o.tpm, "tpm");
  take(b.timeout_s, o.timeout_s, "timeout");
  take(b.deadline_s, o.deadline_s, "deadline");
  take(b.retries, o.retries, "retries");
  take(b.connect_timeout_s, o.connect_timeout_s, "connect_timeout");
  for (const auto& [name, value] : over.headers) set_header(&base->headers, name, value);
}

bool environment_layer(RunSettings* out, std::string* err) {
  const char* base = std::getenv("OPENAI_BASE_URL");
  if (base != nullptr && base[0] != '\0') {
    out->endpoint = base;
    out->source["endpoint"] = "environment OPENAI_BASE_URL";
  }
  const char* deadline = std::getenv("BARRAGE_DEADLINE_MS");
  if (deadline != nullptr && deadline[0] != '\0') {
    errno = 0;
    char* end = nullptr;
    long long ms = std::strtoll(deadline, &end, 10);
    if (errno != 0 || *end != '\0' || end == deadline || ms < 0) {
      *err = fmt::format(
          "environment variable BARRAGE_DEADLINE_MS='{}' is not a number of "
          "milliseconds >= 0",
          deadline);
      return false;
    }
    out->limits.deadline_s = static_cast<double>(ms) / 1000.0;
    out->source["deadline"] = "environment BARRAGE_DEADLINE_MS";
  }
  // The engine limits were applied by brg_config_from_env already; they are
  // read again here (same names and units as capi/barrage.h documents) only
  // so that --dry-run can show each value with where it came from.
  for (const EnvLimit& e : kEnvLimits) {
    const char* name = e.name;
    bool ms = e.name_in_ms;
    const char* v = std::getenv(name);
    if ((v == nullptr || v[0] == '\0') && e.alias != nullptr) {
      name = e.alias;
      ms = false;
      v = std::getenv(name);
    }
    if (v == nullptr || v[0] == '\0') continue;
    char* end = nullptr;
    double d = std::strtod(v, &end);
    if (end == v || *end != '\0' || !std::isfinite(d)) continue;  // brg_config_from_env reported it
    if (e.seconds) {
      (out->limits.*(e.seconds)) = ms ? d / 1000.0 : d;
    } else {
      (out->limits.*(e.integer)) = static_cast<int64_t>(d);
    }
    out->source[e.key] = std::string("environment ") + name;
  }
  return true;
}

bool apply_limits(const Limits& l, brg_config* cfg, std::string* err) {
  if (l.concurrency && !set_int(cfg, BRG_OPT_MAX_INFLIGHT, *l.concurrency, "concurrency", err))
    return false;
  if (l.rps && !set_int(cfg, BRG_OPT_RATE_LIMIT, *l.rps, "rps", err)) return false;
  if (l.rate_period_s &&
      !set_int(cfg, BRG_OPT_RATE_PERIOD_MS, std::max<int64_t>(1, to_ms(*l.rate_period_s)),
               "rate period (ms)", err))
    return false;
  if (l.burst && !set_int(cfg, BRG_OPT_RATE_BURST, *l.burst, "burst", err)) return false;
  if (l.tpm && !set_int(cfg, BRG_OPT_TOKENS_PER_MINUTE, *l.tpm, "tpm", err)) return false;
  if (l.timeout_s && !set_int(cfg, BRG_OPT_TIMEOUT_MS, std::max<int64_t>(1, to_ms(*l.timeout_s)),
                              "timeout (ms)", err))
    return false;
  if (l.retries && !set_int(cfg, BRG_OPT_MAX_RETRIES, *l.retries, "retries", err)) return false;
  if (l.connect_timeout_s &&
      !set_int(cfg, BRG_OPT_CONNECT_TIMEOUT_MS, std::max<int64_t>(1, to_ms(*l.connect_timeout_s)),
               "connect timeout (ms)", err))
    return false;
  return true;
}

bool parse_header_flag(const std::string& text, std::pair<std::string, std::string>* out,
                       std::string* err) {
  size_t colon = text.find(':');
  if (colon == std::string::npos) {
    *err = fmt::format("--header '{}' needs the form 'Name: value'", text);
    return false;
  }
  std::string name = text.substr(0, colon);
  std::string value = text.substr(colon + 1);
  auto trim = [](std::string& s) {
    size_t b = s.find_first_not_of(" \t");
    size_t e = s.find_last_not_of(" \t");
    s = b == std::string::npos ? "" : s.substr(b, e - b + 1);
  };
  trim(name);
  trim(value);
  if (!is_token(name)) {
    *err = fmt::format("--header: '{}' is not a valid header name", name);
    return false;
  }
  if (value.find_first_of("\r\n") != std::string::npos) {
    *err = fmt::format("--header {}: the value may not contain line breaks", name);
    return false;
  }
  *out = {name, value};
  return true;
}

bool is_secret_header(const std::string& name) {
  std::string n = lower(name);
  return n == "authorization" || n == "api-key" || n == "x-api-key" || n == "proxy-authorization";
}

std::string url_origin(const std::string& url) {
  size_t sep = url.find("://");
  if (sep == std::string::npos) return "";
  size_t end = url.find_first_of("/?#", sep + 3);
  return lower(url.substr(0, end));
}

bool is_loopback_url(const std::string& url) {
  std::string origin = url_origin(url);
  size_t sep = origin.find("://");
  if (sep == std::string::npos) return false;
  std::string host = origin.substr(sep + 3);
  size_t at = host.rfind('@');
  if (at != std::string::npos) host = host.substr(at + 1);
  if (!host.empty() && host[0] == '[') {
    host = host.substr(1, host.find(']') - 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace barrage::cli
