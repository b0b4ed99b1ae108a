// The batch runner: streams an OpenAI Batch API input file through an
// engine on the calling thread and appends one output line per input line
// to a file that stays a valid checkpoint at every moment.
#pragma once

#include <string>

#include "barrage.h"
#include "batch/batch_options.hpp"

namespace barrage {

// brg_batch_run's behaviour (barrage.h) over checked settings, driving the
// engine through the C ABI only. The engine must be in inline mode and
// should have no other requests pending: results that are not the batch's
// are taken and dropped. Returns 0, or a negative brg_status with *err set;
// *final_out, when not NULL, gets the last figures.
int run_batch(brg_engine* engine, const BatchSettings& settings, brg_batch_progress_fn progress, void* user,
              brg_batch_progress* final_out, std::string* err);

}  // namespace barrage
