// brg_config's setters and brg_config_from_env, generated from the option
// table (barrage_options.h): range checks, types and environment names.
#pragma once

#include <cstdint>
#include <string>

#include "core/config.hpp"

namespace barrage::capi {

// Option numbers are brg_option values. Each returns "" or why the value
// was refused (the config is unchanged then).
std::string config_set_int(EngineConfig& c, int option, int64_t value);
std::string config_set_str(EngineConfig& c, int option, const char* value);
// Reads BARRAGE_<NAME>, else the row's aliases, in option-number order; stops
// at the first variable that does not parse. getenv is an argument so tests
// can supply their own environment.
std::string config_from_env(EngineConfig& c, const char* (*getenv_fn)(const char*));

}  // namespace barrage::capi
