// One measured phase of `barrage demo`: N chat completions through a fresh
// libbarrage engine, either one at a time or all submitted at once with the
// engine's in-flight cap doing the pacing, every answer checked.
#pragma once

#include <barrage.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace barrage::cli {

struct PhaseSpec {
  std::string url;      // https://127.0.0.1:PORT/v1/chat/completions
  std::string ca_file;  // the mock's CA, trusted through BRG_OPT_CA_FILE
  int backend = BRG_BACKEND_AUTO;
  size_t requests = 0;
  int64_t max_inflight = 1;
  bool sequential = false;  // wait for each answer before submitting the next
  int64_t timeout_ms = 0;   // per attempt
};

struct PhaseReport {
  size_t requests = 0;
  size_t ok = 0;
  size_t errors = 0;  // requests that failed or whose answer was wrong
  double wall_s = 0;
  int64_t tokens = 0;                 // prompt + completion, as the engine reported them
  struct brg_stats stats {};          // engine statistics at the end of the phase
  std::vector<std::string> problems;  // one line per failed check, capped
  size_t problems_dropped = 0;
  std::string fatal;         // set when the phase could not run to the end
  bool interrupted = false;  // SIGINT/SIGTERM arrived
};

// Runs the phase. Never throws for engine failures; they end up in the
// report (problems for single requests, fatal for the engine itself).
PhaseReport run_phase(const PhaseSpec& spec);

}  // namespace barrage::cli
