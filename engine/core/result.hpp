// A finished request as handed to the C caller: the public brg_result plus
// the strings it points into, in one allocation the caller frees.
#pragma once

#include <cstddef>
#include <string>
#include <type_traits>

#include "barrage.h"
#include "loop/mpsc_queue.hpp"

namespace barrage {

struct ResultHolder {
  brg_result pub;  // first: brg_result_free casts back from it
  MpscNode node;
  std::string body;
  std::string error;
  std::string request_id;

  static ResultHolder* from_public(brg_result* r) noexcept { return reinterpret_cast<ResultHolder*>(r); }
  static ResultHolder* from_node(MpscNode* n) noexcept {
    return reinterpret_cast<ResultHolder*>(reinterpret_cast<char*>(n) - offsetof(ResultHolder, node));
  }
  // Points pub.body/pub.error at the owned strings.
  void seal() noexcept {
    pub.body = body.c_str();
    pub.body_len = body.size();
    pub.error = error.c_str();
    pub.request_id = request_id.c_str();
  }
};
static_assert(std::is_standard_layout_v<ResultHolder>, "brg_result must sit at offset 0");

}  // namespace barrage
