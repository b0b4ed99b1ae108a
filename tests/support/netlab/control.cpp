// Parsing and applying the delay line's control commands (control.hpp).
#include "control.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <vector>

namespace barrage::netlab {
namespace {

bool to_number(const std::string& s, double max, double* out) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || end == s.c_str() || *end != '\0' || !std::isfinite(v) || v < 0 || v > max) return false;
  *out = v;
  return true;
}

void append(std::string& out, const char* dir, const LinkCounters& c) {
  const std::string p = std::string(" ") + dir + ".";
  out += p + "passed=" + std::to_string(c.passed) + p + "bytes=" + std::to_string(c.bytes) + p +
         "lost=" + std::to_string(c.lost) + p + "down=" + std::to_string(c.down) + p +
         "queue=" + std::to_string(c.queue) + p + "reordered=" + std::to_string(c.reordered) + p +
         "late_max_us=" + std::to_string(c.late_max_ns / 1000) + p +
         "late_mean_us=" + std::to_string(c.passed ? c.late_sum_ns / c.passed / 1000 : 0);
}

}  // namespace

ControlReply apply_command(const std::string& line, LinkModel& to_ns, LinkModel& from_ns, uint64_t now_ns,
                           uint64_t cpu_us) {
  std::istringstream in(line);
  std::vector<std::string> w;
  for (std::string t; in >> t;) w.push_back(t);
  if (w.empty()) return {"error: empty command"};
  const std::string& cmd = w[0];
  if (cmd == "quit" && w.size() == 1) return {"ok", true};
  if (cmd == "stats" && w.size() == 1) {
    std::string s = "stats";
    append(s, "to", to_ns.counters());
    append(s, "from", from_ns.counters());
    return {s + " cpu_us=" + std::to_string(cpu_us)};
  }
  if (cmd == "up" && w.size() == 1) {
    to_ns.set_down_until(0);
    from_ns.set_down_until(0);
    return {"ok"};
  }
  double v = 0;
  if (cmd == "down" && w.size() == 2) {
    if (!to_number(w[1], 86'400'000, &v)) return {"error: down wants milliseconds"};
    const uint64_t until = now_ns + uint64_t(v * 1e6);
    to_ns.set_down_until(until);
    from_ns.set_down_until(until);
    return {"ok"};
  }
  if (w.size() < 2 || w.size() > 3) return {"error: unknown command: " + line};
  const bool to = w.size() == 2 || w[2] == "to", from = w.size() == 2 || w[2] == "from";
  if (!to && !from) return {"error: direction is 'to' or 'from': " + w[2]};
  LinkSettings st[2] = {to_ns.settings(), from_ns.settings()};
  for (LinkSettings& s : st) {
    if (cmd == "delay" || cmd == "jitter") {
      if (!to_number(w[1], 86'400'000, &v)) return {"error: " + cmd + " wants milliseconds"};
      (cmd == "delay" ? s.delay_ns : s.jitter_ns) = uint64_t(std::llround(v * 1e6));
    } else if (cmd == "loss") {
      if (!to_number(w[1], 1, &v)) return {"error: loss wants a probability 0..1"};
      s.loss = v;
    } else if (cmd == "rate") {
      if (!to_number(w[1], 1e12, &v)) return {"error: rate wants bits per second"};
      s.rate_bps = uint64_t(v);
    } else if (cmd == "queue") {
      if (!to_number(w[1], 1e9, &v) || v < 2048) return {"error: queue wants 2048 bytes or more"};
      s.queue_bytes = uint64_t(v);
    } else {
      return {"error: unknown command: " + line};
    }
  }
  if (to) to_ns.set(st[0]);
  if (from) from_ns.set(st[1]);
  return {"ok"};
}

}  // namespace barrage::netlab
