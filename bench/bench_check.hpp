// How the micro suites report a wrong result. Google Benchmark exits 0 even
// after SkipWithError, so a failed check also sets a flag that run_benchmarks()
// turns into exit code 1: that is what makes the bench-smoke tests real checks.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

namespace barrage::bench {

inline bool g_failed = false;

inline void fail(benchmark::State& state, const std::string& what) {
  g_failed = true;
  std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  state.SkipWithError(what.c_str());
}

// The body of each suite's main().
inline int run_benchmarks(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const size_t ran = benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  if (ran == 0) {
    std::fprintf(stderr, "no benchmark matched --benchmark_filter\n");
    return 1;
  }
  return g_failed ? 1 : 0;
}

}  // namespace barrage::bench
