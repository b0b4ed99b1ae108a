// brg_request -> RequestSpec: the struct's versions (size), pointers and
// counts checked here, so the engine never reads a brg_request.
#pragma once

#include <string>
#include <vector>

#include "barrage.h"
#include "core/request_spec.hpp"

namespace barrage::capi {

// Fills *spec (views into *in and into *headers, which must outlive the
// submit). 0, or BRG_E_INVALID with *err saying which field is wrong.
int to_spec(const brg_request* in, RequestSpec* spec, std::vector<http::HeaderView>* headers, std::string* err);

}  // namespace barrage::capi
