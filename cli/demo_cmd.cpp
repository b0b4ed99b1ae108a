// `barrage demo`: the first thing a newcomer runs. It starts a mock
// OpenAI endpoint in-process with a fixed latency and sends the same chat
// completions twice through libbarrage, one at a time and then many in
// flight, so the gain of concurrency is visible in one table. The exit code
// is honest (wrong answers, failures or a speedup far below the ideal give
// 1), which is what lets the integration tests run it.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>

#include "brg_handles.hpp"
#include "commands.hpp"
#include "demo_phase.hpp"
#include "mock_server.hpp"
#include "stop_signals.hpp"
#include "temp_file.hpp"

namespace barrage::cli {
namespace {

// Below this latency the fixed costs (TLS handshakes, scheduling) dominate
// and the ideal speedup says nothing, so it is shown but not enforced.
constexpr uint32_t kMinCheckedLatencyMs = 50;
constexpr double kMinSpeedupShare = 0.5;
constexpr int kExitInterrupted = 130;

struct DemoOptions {
  size_t requests = 20;
  int64_t concurrency = 10;
  uint32_t latency_ms = 500;
  std::string backend_name = "auto";
  bool quiet = false;
};

struct Row {
  std::string mode;
  PhaseReport report;
};

size_t failed_requests(const PhaseReport& r) { return r.requests - r.ok; }

void print_problems(const Row& row) {
  for (const std::string& p : row.report.problems)
    fmt::print(stderr, "barrage demo: {}: {}\n", row.mode, p);
  if (row.report.problems_dropped > 0) {
    fmt::print(stderr, "barrage demo: {}: ... and {} more problem(s)\n", row.mode,
               row.report.problems_dropped);
  }
  if (!row.report.fatal.empty())
    fmt::print(stderr, "barrage demo: {}: {}\n", row.mode, row.report.fatal);
  size_t unfinished = row.report.requests - row.report.ok - row.report.errors;
  if (unfinished > 0 && !row.report.interrupted) {
    fmt::print(stderr, "barrage demo: {}: {} request(s) never finished\n", row.mode, unfinished);
  }
}

void print_table(const Row& seq, const Row& par) {
  fmt::print("{:<26} {:>8} {:>11} {:>9} {:>7} {:>8}  {}\n", "mode", "requests", "wall time",
             "req/s", "errors", "tokens", "connections");
  for (const Row* row : {&seq, &par}) {
    const PhaseReport& r = row->report;
    double rate = r.wall_s > 0 ? static_cast<double>(r.ok) / r.wall_s : 0;
    fmt::print("{:<26} {:>8} {:>9.2f} s {:>9.1f} {:>7} {:>8}  {} opened\n", row->mode, r.requests,
               r.wall_s, rate, failed_requests(r), r.tokens, r.stats.connections_opened);
  }
}

int run_demo(const DemoOptions& o) {
  // Before the mock's threads exist, so that they inherit the mask and
  // Ctrl-C reaches this thread, which then removes the temporary CA file.
  block_stop_signals();

  mock::MockOptions mo;
  mo.latency_ms = o.latency_ms;
  std::string err;
  std::unique_ptr<mock::MockServer> server = mock::MockServer::start(mo, &err);
  if (!server) {
    fmt::print(stderr, "barrage demo: cannot start the mock server: {}\n", err);
    return 1;
  }
  TempFile ca = TempFile::create("barrage-demo-ca-", ".pem", server->ca_pem(), &err);
  if (ca.path().empty()) {
    fmt::print(stderr, "barrage demo: {}\n", err);
    return 1;
  }

  PhaseSpec spec;
  spec.url = fmt::format("https://127.0.0.1:{}/v1/chat/completions", server->port());
  spec.ca_file = ca.path();
  spec.backend = o.backend_name == "io_uring" ? BRG_BACKEND_IO_URING
                 : o.backend_name == "epoll"  ? BRG_BACKEND_EPOLL
                                              : BRG_BACKEND_AUTO;
  spec.requests = o.requests;
  // Generous, but far below the engine's 10-minute default, so a stuck
  // request fails the demo in seconds instead of hanging it.
  spec.timeout_ms = static_cast<int64_t>(o.latency_ms) + 10000;

  if (!o.quiet) {
    fmt::print("barrage demo: {} chat completions against an in-process mock endpoint at {}\n",
               o.requests, spec.url);
    fmt::print(
        "every answer takes {} ms; the same requests run one at a time, then {} in flight\n\n",
        o.latency_ms, o.concurrency);
    std::fflush(stdout);
  }

  Row seq{"sequential", {}};
  spec.sequential = true;
  spec.max_inflight = 1;
  seq.report = run_phase(spec);

  Row par{fmt::format("parallel ({} in flight)", o.concurrency), {}};
  if (seq.report.fatal.empty() && !seq.report.interrupted) {
    spec.sequential = false;
    spec.max_inflight = o.concurrency;
    par.report = run_phase(spec);
  } else {
    par.report.requests = o.requests;
  }

  if (seq.report.interrupted || par.report.interrupted) {
    fmt::print(stderr, "barrage demo: interrupted\n");
    return kExitInterrupted;
  }

  size_t batches =
      (o.requests + static_cast<size_t>(o.concurrency) - 1) / static_cast<size_t>(o.concurrency);
  double ideal = static_cast<double>(o.requests) / static_cast<double>(batches);
  double ideal_parallel_s = static_cast<double>(batches) * o.latency_ms / 1000.0;
  double speedup = par.report.wall_s > 0 ? seq.report.wall_s / par.report.wall_s : 0;

  if (!o.quiet) {
    print_table(seq, par);
    fmt::print("\nbackend {}; ideal parallel time ceil({}/{}) x {} ms = {:.2f} s\n",
               backend_name(par.report.stats.backend != 0 ? par.report.stats.backend
                                                          : seq.report.stats.backend),
               o.requests, o.concurrency, o.latency_ms, ideal_parallel_s);
  }
  fmt::print("sequential {} requests {:.2f} s | {} {:.2f} s | speedup {:.1f}x (ideal {:.1f}x)\n",
             o.requests, seq.report.wall_s, par.mode, par.report.wall_s, speedup, ideal);
  std::fflush(stdout);

  // Problems after the table, so the table is read first on a terminal.
  print_problems(seq);
  print_problems(par);
  int rc = 0;
  size_t failed = failed_requests(seq.report) + failed_requests(par.report);
  if (failed > 0) {
    fmt::print(stderr,
               "barrage demo: FAILED: {} of {} request(s) did not return a correct answer\n",
               failed, 2 * o.requests);
    rc = 1;
  }
  if (failed == 0 && o.latency_ms >= kMinCheckedLatencyMs && speedup < kMinSpeedupShare * ideal) {
    fmt::print(stderr,
               "barrage demo: FAILED: speedup {:.1f}x is below half the ideal {:.1f}x: either the "
               "requests did not overlap, or fixed costs ({} new TLS connections) outweigh {} ms "
               "of latency\n",
               speedup, ideal, par.report.stats.connections_opened, o.latency_ms);
    rc = 1;
  }
  return rc;
}

}  // namespace

Command add_demo_command(CLI::App& parent) {
  auto o = std::make_shared<DemoOptions>();
  CLI::App* app = parent.add_subcommand(
      "demo", "Compare sequential and concurrent requests against a built-in mock (start here)");
  app->add_option("-n,--requests", o->requests, "number of chat completions per mode")
      ->check(CLI::Range(size_t{1}, size_t{1000000}))
      ->capture_default_str();
  app->add_option("-c,--concurrency", o->concurrency,
                  "requests in flight in the parallel run (BRG_OPT_MAX_INFLIGHT)")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}))
      ->capture_default_str();
  app->add_option("--latency-ms", o->latency_ms, "how long the mock takes to answer each request")
      ->check(CLI::Range(uint32_t{0}, uint32_t{600000}))
      ->capture_default_str();
  app->add_option("--backend", o->backend_name, "reactor backend: auto, io_uring or epoll")
      ->check(CLI::IsMember({"auto", "io_uring", "epoll"}))
      ->capture_default_str();
  app->add_flag("-q,--quiet", o->quiet, "print only the one-line summary (and any errors)");
  app->footer(
      "Sends the same chat completions to an in-process mock endpoint through libbarrage, first "
      "one at a time, then C in flight, checks every answer and prints the speedup next to the "
      "ideal one.\n"
      "Needs no API key and no network: the mock listens on 127.0.0.1 with a certificate from a "
      "throw-away CA, which is written to $TMPDIR for the engine to trust and removed at exit.\n"
      "Exit status: 0 when every answer was correct and the parallel run reached at least half "
      "the ideal speedup ceil(N/C) batches predict (checked from 50 ms latency up), 1 otherwise.");
  return {app, [o] { return run_demo(*o); }};
}

}  // namespace barrage::cli
