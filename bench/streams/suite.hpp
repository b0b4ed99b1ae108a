// What bench_streams' benchmarks share with its main: failing a benchmark so
// that the process exits non-zero (Google Benchmark itself exits 0 after
// SkipWithError), and the quick (smoke) mode, BARRAGE_E2E_QUICK=1 as in the
// e2e suite, whose figures mean nothing.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace barrage::streams {

inline bool g_failed = false;

inline void fail(benchmark::State& state, const std::string& what) {
  g_failed = true;
  std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  state.SkipWithError(what.c_str());
}

inline bool quick() noexcept {
  const char* q = std::getenv("BARRAGE_E2E_QUICK");
  return q && *q && std::strcmp(q, "0") != 0;
}

}  // namespace barrage::streams
