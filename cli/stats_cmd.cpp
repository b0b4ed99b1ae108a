// `barrage stats OUT.jsonl`: the summary `barrage run` prints at its end,
// for any Batch API output file (finished, interrupted, or from elsewhere),
// as text or JSON, with optional Prometheus metrics and a chart.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "batch_summary.hpp"
#include "commands.hpp"

namespace barrage::cli {
namespace {

struct StatsArgs {
  std::string path, metrics, plot;
  bool json = false;
};

int run_stats(const StatsArgs& a) {
  BatchSummary s;
  std::string err;
  if (!read_batch_output(a.path, &s, &err)) {
    fmt::print(stderr, "barrage stats: {}\n", err);
    return 2;
  }
  if (a.json) {
    fmt::print("{}\n", summary_json(s, nullptr));
  } else {
    print_summary(stdout, s, nullptr);
  }
  std::fflush(stdout);
  int rc = summary_exit_code(s);
  if (!a.metrics.empty() && !write_metrics(a.metrics, s, nullptr, &err)) {
    fmt::print(stderr, "barrage stats: {}\n", err);
    rc = std::max(rc, 1);
  }
  if (!a.plot.empty()) {
    std::string msg;
    int prc = write_plot(a.plot, s, &msg);
    fmt::print(stderr, "barrage stats: {}\n", msg);
    if (prc != 0 && prc != 77) rc = std::max(rc, 1);
  }
  return rc;
}

}  // namespace

Command add_stats_command(CLI::App& parent) {
  auto a = std::make_shared<StatsArgs>();
  CLI::App* app = parent.add_subcommand(
      "stats", "Summarise a batch output file (success, errors, latency, cost)");
  app->add_option("output", a->path, "Batch API output JSONL, e.g. from `barrage run -o`")
      ->required();
  app->add_option("--metrics", a->metrics, "also write Prometheus text-format metrics here");
  app->add_option("--plot", a->plot,
                  "also draw latency histogram and throughput to this PNG (gnuplot)");
  app->add_flag("--json", a->json, "print the summary as one JSON object");
  app->footer(
      "Reads the file as a stream; works on a file a run is still writing, and on Batch API\n"
      "output from other tools (figures that need barrage's own fields are then missing).\n"
      "Exit status: 0 every request succeeded, 1 some failed, 2 the file cannot be read.");
  return {app, [a] { return run_stats(*a); }};
}

}  // namespace barrage::cli
