// What a batch output file says, read back line by line: the one summary
// `barrage run` prints at its end and `barrage stats` prints for any output
// file, and the Prometheus text and gnuplot chart made from the same
// figures. Lines follow the Batch API output format (capi/barrage.h, batch
// runner section); the "barrage" member is used when present, so files
// written by other tools are read too, with fewer figures.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace barrage::cli {

struct InvalidLine {
  int64_t line = 0;     // barrage.line, the input line number; 0 unknown
  std::string message;  // error.message
};

struct BatchSummary {
  std::string path;
  uint64_t lines = 0;                   // complete JSON lines read
  uint64_t ok = 0;                      // "error": null
  uint64_t failed = 0;                  // requests that ran and failed
  uint64_t invalid = 0;                 // error.code "invalid_request": the input line was unusable
  uint64_t cached = 0;                  // barrage.cached
  uint64_t duplicates = 0;              // custom_ids seen before in the file
  uint64_t unparsable = 0;              // lines that are not JSON objects, torn tail excluded
  std::vector<uint64_t> unparsable_at;  // their file line numbers, first few
  bool torn_tail = false;               // the last line has no newline and does not parse
  std::map<std::string, uint64_t> errors;  // "http_error 429", "timeout", "invalid_request"
  std::vector<InvalidLine> invalid_lines;
  std::vector<double> latency_ms, ttfb_ms;
  std::vector<int64_t> finished_ms;  // barrage.finished_unix_ms, with latency_ms alongside
  std::vector<double> finished_latency_ms;
  int64_t prompt_tokens = 0, completion_tokens = 0;
  double cost_usd = 0;
  bool has_cost = false;
  std::map<std::string, uint64_t> models;

  uint64_t requests() const { return ok + failed + invalid; }
  uint64_t not_ok() const { return failed + invalid; }
};

// What `barrage run` adds about the invocation that just ended.
struct RunFigures {
  uint64_t written = 0, skipped = 0, total = 0;
  uint64_t ok = 0, failed = 0, invalid = 0, cached = 0;
  double elapsed_s = 0;
  bool stopped = false;  // stopped on a signal before the end
};

// Streams the file. Returns false with *err when it cannot be opened or read.
bool read_batch_output(const std::string& path, BatchSummary* out, std::string* err);

// The human summary (stdout). run: the figures of this invocation, or null
// for `barrage stats`. max_invalid: invalid lines listed by number.
void print_summary(std::FILE* f, const BatchSummary& s, const RunFigures* run,
                   size_t max_invalid = 20);

// The same as one JSON object (`barrage stats --json`).
std::string summary_json(const BatchSummary& s, const RunFigures* run);

// Prometheus text exposition format, written to path.tmp and renamed, so a
// node_exporter textfile collector never reads half a file.
bool write_metrics(const std::string& path, const BatchSummary& s, const RunFigures* run,
                   std::string* err);

// A PNG with the latency histogram and the throughput over time, drawn by
// gnuplot. Returns 0 when written, 1 on failure, 77 when gnuplot is not
// installed (skipped); *msg says what happened.
int write_plot(const std::string& path, const BatchSummary& s, std::string* msg);

// Percentile (0..100) of sorted values by the nearest-rank method; NaN when empty.
double percentile(const std::vector<double>& sorted, double p);

// Exit status for a summary: 0 when every request succeeded, 1 otherwise.
int summary_exit_code(const BatchSummary& s);

}  // namespace barrage::cli
