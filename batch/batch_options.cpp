// Batch options. Checks happen here, before the input is opened, so that a
// bad option costs nothing and names itself.
#include "batch/batch_options.hpp"

#include <strings.h>
#include <sys/stat.h>

#include <cstring>

#include "batch/url_check.hpp"

namespace barrage {
namespace {

constexpr uint32_t kKnownFlags = BRG_BATCH_RESUME | BRG_BATCH_ORDERED | BRG_BATCH_DRY_RUN;

bool has_header(const std::vector<std::pair<std::string, std::string>>& hs, std::string_view name) {
  for (auto& [n, v] : hs)
    if (n.size() == name.size() && strncasecmp(n.data(), name.data(), name.size()) == 0) return true;
  return false;
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa {}, sb {};
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

}  // namespace

std::string normalize_endpoint(std::string_view endpoint, std::string* why) {
  while (endpoint.ends_with("/")) endpoint.remove_suffix(1);
  std::string e(endpoint);
  if (!e.starts_with("https://") && !e.starts_with("http://")) {
    *why = "endpoint \"" + e + "\" must start with https:// (or http:// with BRG_OPT_ALLOW_HTTP)";
    return "";
  }
  if (e.find_first_of("?#") != std::string::npos) {
    *why = "endpoint \"" + e + "\" must not have a query or fragment";
    return "";
  }
  std::string bad = check_url(e + "/", true);
  if (!bad.empty()) {
    *why = "endpoint \"" + e + "\": " + bad;
    return "";
  }
  return e;
}

std::string settings_from_options(const brg_batch_options* o, GetenvFn getenv_fn, BatchSettings* out) {
  if (!o) return "options is NULL";
  if (o->size < sizeof(brg_batch_options) || o->size > 65536)
    return "brg_batch_options.size is " + std::to_string(o->size) + "; set it to sizeof(brg_batch_options)";
  if (o->flags & ~kKnownFlags) return "unknown flag bits in brg_batch_options.flags";
  bool dry = o->flags & BRG_BATCH_DRY_RUN;
  if (!o->input_path || !*o->input_path) return "input_path is missing";
  if (!dry && (!o->output_path || !*o->output_path)) return "output_path is missing";
  if (o->n_headers > 0 && !o->headers) return "headers is NULL but n_headers > 0";
  if (o->deadline_ms < 0) return "deadline_ms is negative";
  if (o->max_retries < -1) return "max_retries must be -1 (engine default) or >= 0";
  if (o->shard_count > 1 && o->shard_index >= o->shard_count)
    return "shard_index " + std::to_string(o->shard_index) + " is not below shard_count " +
           std::to_string(o->shard_count);

  BatchSettings s;
  s.flags = o->flags;
  s.input_path = o->input_path;
  s.output_path = o->output_path ? o->output_path : "";
  if (!s.output_path.empty() && same_file(s.input_path, s.output_path))
    return "output_path is the input file itself";
  s.reorder_window = o->reorder_window ? o->reorder_window : kDefaultReorderWindow;
  s.deadline_ms = o->deadline_ms;
  s.max_retries = o->max_retries;
  s.shard_count = o->shard_count > 1 ? o->shard_count : 1;
  s.shard_index = o->shard_count > 1 ? o->shard_index : 0;

  const char* endpoint = o->endpoint;
  if (!endpoint || !*endpoint) endpoint = getenv_fn("OPENAI_BASE_URL");
  if (!endpoint || !*endpoint) endpoint = "https://api.openai.com";
  std::string why;
  s.endpoint = normalize_endpoint(endpoint, &why);
  if (s.endpoint.empty()) return why;

  for (uint32_t i = 0; i < o->n_headers; ++i) {
    if (!o->headers[i].name || !o->headers[i].value)
      return "header " + std::to_string(i) + " has a NULL name or value";
    s.headers.emplace_back(o->headers[i].name, o->headers[i].value);
  }
  const char* key_env = o->api_key_env && *o->api_key_env ? o->api_key_env : "OPENAI_API_KEY";
  const char* key = getenv_fn(key_env);
  if (key && *key && !has_header(s.headers, "authorization")) {
    if (std::strpbrk(key, "\r\n"))
      return std::string("the API key in $") + key_env + " contains a line break";
    s.headers.emplace_back("Authorization", std::string("Bearer ") + key);
  }
  if (!has_header(s.headers, "content-type")) s.headers.emplace_back("Content-Type", "application/json");

  if (o->prices_path && *o->prices_path) {
    std::string err = s.prices.load_file(o->prices_path);
    if (!err.empty()) return err;
  } else {
    s.prices = PriceTable::builtin();
  }
  *out = std::move(s);
  return "";
}

}  // namespace barrage
