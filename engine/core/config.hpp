// The engine's settings: one field per row of the option table in
// capi/barrage_options.h, named and defaulted by it, so that a new option is
// one new row. Checking and parsing values is the C ABI's job (capi/).
#pragma once

#include <cstdint>
#include <string>

#include "barrage_options.h"

namespace barrage {

struct EngineConfig {
#define BRG_CONFIG_INT_ int64_t
#define BRG_CONFIG_BOOL_ int64_t
#define BRG_CONFIG_BACKEND_ int64_t
#define BRG_CONFIG_STR_ std::string
#define BRG_CONFIG_FIELD_(number, NAME, name, type, def, ...) BRG_CONFIG_##type##_ name = def;
  BRG_OPTION_TABLE(BRG_CONFIG_FIELD_)
#undef BRG_CONFIG_FIELD_
#undef BRG_CONFIG_INT_
#undef BRG_CONFIG_BOOL_
#undef BRG_CONFIG_BACKEND_
#undef BRG_CONFIG_STR_
};

}  // namespace barrage
