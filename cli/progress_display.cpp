// Drawing the progress of a batch (see progress_display.hpp).
#include "progress_display.hpp"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace barrage::cli {
namespace {

// req/s is measured over this window, so a slow start or a pause for a 429
// cooldown stops weighing on the ETA once it is over.
constexpr double kRateWindowS = 5.0;
constexpr double kRedrawS = 0.1;
constexpr int kDefaultColumns = 80;
constexpr size_t kBarWidth = 20;

int terminal_columns(std::FILE* f) {
  winsize ws{};
  if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return kDefaultColumns;
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 360000) return "--:--";
  auto s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

std::string format_count(double v) {
  if (v < 1000) return fmt::format("{:.0f}", v);
  if (v < 1e6) return fmt::format("{:.1f}k", v / 1e3);
  if (v < 1e9) return fmt::format("{:.2f}M", v / 1e6);
  return fmt::format("{:.2f}G", v / 1e9);
}

ProgressDisplay::Mode ProgressDisplay::pick_mode(std::FILE* f, bool quiet) {
  if (quiet) return Mode::off;
  return isatty(fileno(f)) != 0 ? Mode::bar : Mode::lines;
}

double ProgressDisplay::rate(const brg_batch_progress& p) {
  window_.emplace_back(p.elapsed_s, p.done);
  while (window_.size() > 2 && p.elapsed_s - window_[1].first >= kRateWindowS) window_.pop_front();
  double span = p.elapsed_s - window_.front().first;
  if (span >= 0.5) return static_cast<double>(p.done - window_.front().second) / span;
  return p.elapsed_s > 0 ? static_cast<double>(p.done) / p.elapsed_s : 0;
}

std::string ProgressDisplay::render(const brg_batch_progress& p, int columns, bool with_bar) {
  double r = rate(p);
  double share = p.total > 0 ? static_cast<double>(p.done) / static_cast<double>(p.total) : 1.0;
  uint64_t left = p.total > p.done ? p.total - p.done : 0;
  double eta = left == 0 ? 0 : (r > 0 ? static_cast<double>(left) / r : NAN);
  std::string text = fmt::format(
      "{}/{} {:5.1f}% {} req/s ETA {} | errors {} | tokens {} | ${:.4f}", p.done, p.total,
      share * 100, r >= 100 ? fmt::format("{:.0f}", r) : fmt::format("{:.1f}", r),
      format_duration(eta), p.failed + p.invalid,
      format_count(static_cast<double>(std::max<int64_t>(0, p.prompt_tokens) +
                                       std::max<int64_t>(0, p.completion_tokens))),
      p.cost_usd);
  if (p.cached > 0) text += fmt::format(" | cached {}", p.cached);
  // The bar goes in front when the line still fits; a line that wraps
  // cannot be redrawn with \r.
  if (with_bar && text.size() + kBarWidth + 3 < static_cast<size_t>(columns)) {
    auto filled = static_cast<size_t>(std::floor(share * kBarWidth));
    text = fmt::format("[{}{}] {}", std::string(filled, '#'), std::string(kBarWidth - filled, '.'),
                       text);
  }
  if (columns > 1 && text.size() >= static_cast<size_t>(columns))
    text.resize(static_cast<size_t>(columns) - 1);
  return text;
}

void ProgressDisplay::update(const brg_batch_progress& p) {
  if (mode_ == Mode::off) return;
  if (mode_ == Mode::bar) {
    if (last_draw_s_ >= 0 && p.elapsed_s - last_draw_s_ < kRedrawS) return;
    last_draw_s_ = p.elapsed_s;
    std::string text = render(p, terminal_columns(f_), true);
    // \x1b[K clears what a longer previous line left behind.
    fmt::print(f_, "\r{}\x1b[K", text);
    std::fflush(f_);
    bar_visible_ = true;
    return;
  }
  // Lines: keep the rate window fed, print only every line_interval_s_.
  if (last_draw_s_ < 0) last_draw_s_ = 0;
  std::string text = render(p, 0, false);
  if (p.elapsed_s - last_draw_s_ < line_interval_s_) return;
  last_draw_s_ = p.elapsed_s;
  fmt::print(f_, "barrage run: {}\n", text);
  std::fflush(f_);
}

void ProgressDisplay::message(const std::string& text) {
  if (bar_visible_) fmt::print(f_, "\r\x1b[K");
  fmt::print(f_, "barrage run: {}\n", text);
  std::fflush(f_);
  last_draw_s_ = -1;  // redraw the bar at once below the message
}

void ProgressDisplay::finish(const brg_batch_progress& p) {
  if (mode_ != Mode::bar) return;
  last_draw_s_ = -1;
  update(p);
  fmt::print(f_, "\n");
  std::fflush(f_);
  bar_visible_ = false;
}

}  // namespace barrage::cli
