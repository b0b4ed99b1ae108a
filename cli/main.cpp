// barrage: command-line front end of libbarrage, the single-threaded engine
// for very many concurrent HTTPS LLM API calls. Usage:
//
//   barrage demo [-n 20] [-c 10] [--latency-ms 500] [--backend auto|io_uring|epoll]
//       runs the same chat completions against an in-process mock endpoint
//       one at a time and then C in flight, and prints the speedup;
//   barrage mock-server [--port 8443] [--latency-ms N] [--rate-429 0.05] [--write-ca ca.pem]
//       serves an OpenAI-compatible mock with fault injection until Ctrl-C;
//   barrage run IN.jsonl -o OUT.jsonl [--resume] [--rps N] [--tpm N] [--config FILE] ...
//       runs an OpenAI Batch API file with progress, resume, cache and cost;
//   barrage stats OUT.jsonl [--json] [--metrics FILE] [--plot FILE.png]
//       summarises a batch output file;
//   barrage version
//       prints the library version and the reactor backend in use here.
//
// Every subcommand has --help. The commands talk to the engine only through
// the C ABI in capi/barrage.h, like any other client. This file only wires
// the subcommands together and keeps exceptions from escaping main.
#include <fmt/format.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <vector>

#include "commands.hpp"

int main(int argc, char** argv) {
  try {
    // Writes to a closed pipe (`barrage demo | head -1`) should fail with
    // EPIPE rather than kill the process before it cleans up.
    signal(SIGPIPE, SIG_IGN);

    CLI::App app(
        "barrage fires many HTTPS LLM API requests at once from one thread "
        "(io_uring or epoll, keep-alive TLS, retries and rate limits).",
        "barrage");
    app.require_subcommand(1);
    app.footer(
        "Start with `barrage demo`: it needs no API key and no network. Then try\n"
        "`barrage run` on examples/batch/chat.jsonl against `barrage mock-server`.\n"
        "Run `barrage COMMAND --help` for the flags of each command.");
    std::vector<barrage::cli::Command> commands = {
        barrage::cli::add_demo_command(app),    barrage::cli::add_mock_server_command(app),
        barrage::cli::add_run_command(app),     barrage::cli::add_stats_command(app), barrage::cli::add_merge_command(app),
        barrage::cli::add_version_command(app),
    };
    if (argc < 2) {
      fmt::print(stderr, "{}", app.help());
      return 2;
    }
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      // CLI11 numbers its errors from 100 up; scripts expect 2 for misuse.
      return app.exit(e) == 0 ? 0 : 2;
    }
    for (const barrage::cli::Command& c : commands) {
      if (c.app->parsed()) return c.run();
    }
    return 2;  // unreachable: require_subcommand(1) guarantees one parsed
  } catch (const std::exception& e) {
    fmt::print(stderr, "barrage: {}\n", e.what());
  } catch (...) {
    fmt::print(stderr, "barrage: unexpected failure\n");
  }
  return 1;
}
