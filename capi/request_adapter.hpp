// brg_request -> RequestSpec: the struct's versions (size), pointers and
// counts checked here, so the engine never reads a brg_request.
#pragma once

#include <string>
#include <vector>

#include "barrage.h"
#include "core/request_spec.hpp"

namespace barrage::capi {

// The header views of one submit: on the stack for the usual few.
struct HeaderViews {
  http::HeaderView small[16];
  std::vector<http::HeaderView> big;
  http::HeaderView* reserve(size_t n) {
    if (n <= 16) return small;
    big.resize(n);
    return big.data();
  }
};

// Fills *spec (views into *in and into *headers, which must outlive the
// submit). 0, or BRG_E_INVALID with *err saying which field is wrong.
int to_spec(const brg_request* in, RequestSpec* spec, HeaderViews* headers, std::string* err);

}  // namespace barrage::capi
