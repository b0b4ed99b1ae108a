// What the benchmarks of the end-to-end suite share: failing a benchmark so
// that the process exits non-zero, the quick (smoke) mode, the backends, and
// opening a checked client.
#pragma once

#include "client.hpp"

#include <benchmark/benchmark.h>

#include <memory>
#include <string>

namespace barrage::e2e {

// Set by fail(); main() exits 1 on it, because Google Benchmark itself exits
// 0 even when a benchmark called SkipWithError.
extern bool g_failed;

void fail(benchmark::State& state, const std::string& what);

// BARRAGE_E2E_QUICK=1 (the bench-smoke test) shrinks every batch so that the
// suite's subset proves it works in seconds; its figures mean nothing.
bool quick() noexcept;
// n, or n / 10 (at least `floor`) in quick mode.
size_t scaled(size_t n, size_t floor = 1) noexcept;

// An engine on the given options, or nullptr after fail().
std::unique_ptr<Client> open_client(benchmark::State& state, const ClientOptions& opts);

// Runs the batch; false after fail() with `what` and the reason.
bool run_or_fail(benchmark::State& state, Client& c, const Batch& b, Outcome* out, const char* what);

}  // namespace barrage::e2e
