// Progress of `barrage run` on stderr, fed by the batch runner's progress
// callback: on a terminal one line redrawn in place with \r (done/total,
// percent, req/s, ETA, errors, tokens, cost); otherwise, for logs, a plain
// line every few seconds.
#pragma once

#include <barrage.h>

#include <cstdint>
#include <cstdio>
#include <deque>
#include <string>
#include <utility>

namespace barrage::cli {

class ProgressDisplay {
 public:
  enum class Mode { off, bar, lines };

  // bar when f is a terminal, lines otherwise; off when quiet.
  static Mode pick_mode(std::FILE* f, bool quiet);

  ProgressDisplay(Mode mode, std::FILE* f, double line_interval_s = 5.0)
      : mode_(mode), f_(f), line_interval_s_(line_interval_s) {}

  // Called with every progress report; draws at most ten times a second.
  void update(const brg_batch_progress& p);
  // Prints a message on its own line without garbling the bar (which is
  // redrawn on the next update). Shown in every mode, quiet included.
  void message(const std::string& text);
  // Draws the last state and ends the bar's line.
  void finish(const brg_batch_progress& p);

  // The text of one report, without \r; exposed for the tests.
  std::string render(const brg_batch_progress& p, int columns, bool with_bar);

 private:
  double rate(const brg_batch_progress& p);

  Mode mode_;
  std::FILE* f_;
  double line_interval_s_;
  double last_draw_s_ = -1;
  bool bar_visible_ = false;
  std::deque<std::pair<double, uint64_t>> window_;  // (elapsed_s, done) over the last seconds
};

// "1:05", "2:03:04" or "--:--" for an unknown time.
std::string format_duration(double seconds);
// 950, 12.3k, 4.56M.
std::string format_count(double v);

}  // namespace barrage::cli
