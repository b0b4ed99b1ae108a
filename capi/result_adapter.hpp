// Outcome -> brg_result, and EngineStats -> brg_stats. A result and its
// outcome share one allocation (the engine makes outcomes through this
// store), so handing a result to the caller copies no body.
#pragma once

#include <cstddef>
#include <type_traits>

#include "barrage.h"
#include "core/engine_stats.hpp"
#include "core/outcome.hpp"

namespace barrage::capi {

struct ResultHolder {
  brg_result pub;  // first: brg_result_free casts back from it
  Outcome out;

  static ResultHolder* from_public(brg_result* r) noexcept { return reinterpret_cast<ResultHolder*>(r); }
  static ResultHolder* from_outcome(Outcome* o) noexcept;
  // Fills pub from out; pub's strings point into out's.
  void seal() noexcept;
};

class ResultStore final : public OutcomeStore {
 public:
  Outcome* make() noexcept override;
  void destroy(Outcome* o) noexcept override;
};

// Copies s into *out, as much of it as out->size covers.
void copy_stats(const EngineStats& s, struct brg_stats* out) noexcept;

}  // namespace barrage::capi
