// One row of the option table becomes one OptionRow here: the setters,
// the range checks and the environment reader all walk the same rows.
#include "config_adapter.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <type_traits>

#include "barrage.h"

namespace barrage::capi {
namespace {

enum class Type { kInt, kBool, kBackend, kStr };

struct OptionRow {
  int number;
  const char* name;  // NAME: BRG_OPT_<NAME>, BARRAGE_<NAME>
  Type type;
  int64_t min, max;
  const char* aliases;  // "a,b:s"
  int64_t EngineConfig::*int_field;
  std::string EngineConfig::*str_field;
};

// The field pointer of the row's own type, nullptr for the other one.
template <typename T>
constexpr int64_t EngineConfig::*int_ptr(T EngineConfig::*p) {
  if constexpr (std::is_same_v<T, int64_t>) return p;
  else return nullptr;
}
template <typename T>
constexpr std::string EngineConfig::*str_ptr(T EngineConfig::*p) {
  if constexpr (std::is_same_v<T, std::string>) return p;
  else return nullptr;
}

constexpr Type kType_INT = Type::kInt, kType_BOOL = Type::kBool, kType_BACKEND = Type::kBackend,
               kType_STR = Type::kStr;

const OptionRow kRows[] = {
#define BRG_OPTION_ROW_(number, NAME, name, type, def, lo, hi, aliases, doc) \
  {number, #NAME, kType_##type, lo, hi, aliases, int_ptr(&EngineConfig::name), str_ptr(&EngineConfig::name)},
    BRG_OPTION_TABLE(BRG_OPTION_ROW_)
#undef BRG_OPTION_ROW_
};

const OptionRow* find_row(int number) {
  for (const auto& r : kRows)
    if (r.number == number) return &r;
  return nullptr;
}

// How an environment value is written: the row's own form, or seconds for
// an alias marked ":s" (LLM_RATE_PERIOD, ASYNC_LLM_TIMEOUT).
bool parse_env(const std::string& s, Type type, bool seconds, int64_t* out) {
  if (type == Type::kBool) {
    if (s == "1" || s == "true" || s == "yes" || s == "on") return *out = 1, true;
    if (s == "0" || s == "false" || s == "no" || s == "off") return *out = 0, true;
    return false;
  }
  if (type == Type::kBackend) {
    if (s == "auto") return *out = BRG_BACKEND_AUTO, true;
    if (s == "io_uring" || s == "uring") return *out = BRG_BACKEND_IO_URING, true;
    if (s == "epoll") return *out = BRG_BACKEND_EPOLL, true;
    return false;
  }
  errno = 0;
  char* end = nullptr;
  if (seconds) {
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

const char* form_of(Type type, bool seconds) {
  if (seconds) return "number of seconds";
  switch (type) {
    case Type::kBool: return "boolean (1/0, true/false)";
    case Type::kBackend: return "backend (auto, io_uring, epoll)";
    default: return "integer";
  }
}

}  // namespace

std::string config_set_int(EngineConfig& c, int option, int64_t value) {
  const OptionRow* r = find_row(option);
  if (!r || r->type == Type::kStr) return "option " + std::to_string(option) + " is not an integer option";
  if (value < r->min || value > r->max)
    return "option " + std::string(r->name) + " = " + std::to_string(value) + " is out of range [" +
           std::to_string(r->min) + ", " + std::to_string(r->max) + "]";
  c.*(r->int_field) = value;
  return "";
}

std::string config_set_str(EngineConfig& c, int option, const char* value) {
  const OptionRow* r = find_row(option);
  if (!r || r->type != Type::kStr) return "option " + std::to_string(option) + " is not a string option";
  c.*(r->str_field) = value ? value : "";
  return "";
}

std::string config_from_env(EngineConfig& c, const char* (*getenv_fn)(const char*)) {
  for (const auto& r : kRows) {
    // BARRAGE_<NAME> wins; then each alias in the row's order (curl's lower
    // case proxy names before the upper case ones).
    std::string name = std::string("BARRAGE_") + r.name;
    const char* v = getenv_fn(name.c_str());
    bool seconds = false;
    // A string set to "" is a value (BARRAGE_PROXY="" means direct); an
    // empty number is not.
    auto unset = [&] { return !v || (r.type != Type::kStr && !*v); };
    for (std::string_view rest = r.aliases; unset() && !rest.empty();) {
      size_t comma = rest.find(',');
      std::string_view alias = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      seconds = alias.size() > 2 && alias.substr(alias.size() - 2) == ":s";
      if (seconds) alias.remove_suffix(2);
      name.assign(alias);
      v = getenv_fn(name.c_str());
    }
    if (r.type == Type::kStr) {
      if (v) c.*(r.str_field) = v;
      continue;
    }
    if (!v || !*v) continue;
    int64_t parsed;
    if (!parse_env(v, r.type, seconds, &parsed))
      return "environment variable " + name + "='" + v + "' is not a valid " + form_of(r.type, seconds);
    std::string err = config_set_int(c, r.number, parsed);
    if (!err.empty()) return "environment variable " + name + ": " + err;
  }
  return "";
}

}  // namespace barrage::capi
