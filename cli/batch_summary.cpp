// Reading a batch output file back and presenting it: text, JSON,
// Prometheus and a gnuplot chart. simdjson's On-Demand API reads only the
// members used here, so multi-megabyte answer bodies are skipped unparsed.
#include "batch_summary.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <simdjson.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <numeric>
#include <string_view>
#include <unordered_set>

#include "batch/json_text.hpp"

extern char** environ;

namespace barrage::cli {
namespace {

constexpr size_t kMaxUnparsableListed = 10;
constexpr size_t kMaxInvalidKept = 100000;

// The batch library's escaper, so `stats --json` and the output lines it
// reads agree on what a JSON string is (invalid UTF-8 becomes U+FFFD).
std::string json_escape(std::string_view s) {
  std::string o;
  append_json_string(o, s);
  return o;
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  return fmt::format("{:.6g}", v);
}

// Prometheus label values escape backslash, double quote and newline.
std::string prom_label(std::string_view s) {
  std::string o;
  for (char c : s) {
    if (c == '\\' || c == '"')
      o += '\\', o += c;
    else if (c == '\n')
      o += "\\n";
    else
      o += c;
  }
  return o;
}

std::string grouped(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return v < 0 ? "-" + out : out;
}

struct LineReader {
  simdjson::ondemand::parser parser;
  std::unordered_set<std::string> ids;
  std::unordered_set<int64_t> invalid_lines_seen;
};

double get_double_or(simdjson::ondemand::object& o, std::string_view key, double fallback) {
  double d;
  if (o[key].get_double().get(d) == simdjson::SUCCESS) return d;
  return fallback;
}

int64_t get_int_or(simdjson::ondemand::object& o, std::string_view key, int64_t fallback) {
  int64_t v;
  if (o[key].get_int64().get(v) == simdjson::SUCCESS) return v;
  double d;
  if (o[key].get_double().get(d) == simdjson::SUCCESS) return static_cast<int64_t>(d);
  return fallback;
}

// One output line into s. false when it is not a JSON object (unparsable).
bool add_line(LineReader& r, std::string& buf, BatchSummary* s) {
  using namespace simdjson;
  size_t len = buf.size();
  buf.reserve(len + SIMDJSON_PADDING);
  ondemand::document doc;
  if (r.parser.iterate(padded_string_view(buf.data(), len, buf.capacity())).get(doc) != SUCCESS)
    return false;
  ondemand::object obj;
  if (doc.get_object().get(obj) != SUCCESS) return false;

  std::string custom_id;
  bool has_id = false;
  {
    std::string_view v;
    if (obj["custom_id"].get_string().get(v) == SUCCESS) {
      custom_id = v;
      has_id = true;
    }
  }
  int64_t status_code = 0;
  {
    ondemand::object resp;
    if (obj["response"].get_object().get(resp) == SUCCESS)
      status_code = get_int_or(resp, "status_code", 0);
  }
  std::string code, message;
  bool is_error = false;
  {
    ondemand::value err;
    if (obj["error"].get(err) == SUCCESS) {
      bool is_null = false;
      if (err.is_null().get(is_null) != SUCCESS) return false;
      if (!is_null) {
        is_error = true;
        ondemand::object eo;
        if (err.get_object().get(eo) == SUCCESS) {
          std::string_view v;
          if (eo["code"].get_string().get(v) == SUCCESS) code = v;
          if (eo["message"].get_string().get(v) == SUCCESS) message = v;
        }
      }
    }
  }
  // Batch API files from elsewhere may lack "error" and report a failed
  // answer by its status only.
  if (!is_error && status_code != 0 && (status_code < 200 || status_code > 299)) {
    is_error = true;
    code = "http_error";
  }

  int64_t line = 0;
  bool cached = false;
  double latency = NAN, ttfb = NAN;
  int64_t finished = 0;
  {
    ondemand::object b;
    if (obj["barrage"].get_object().get(b) == SUCCESS) {
      line = get_int_or(b, "line", 0);
      bool c = false;
      if (b["cached"].get_bool().get(c) == SUCCESS) cached = c;
      latency = get_double_or(b, "latency_ms", NAN);
      ttfb = get_double_or(b, "ttfb_ms", NAN);
      int64_t pt = get_int_or(b, "prompt_tokens", -1);
      int64_t ct = get_int_or(b, "completion_tokens", -1);
      if (pt > 0) s->prompt_tokens += pt;
      if (ct > 0) s->completion_tokens += ct;
      std::string_view model;
      if (b["model"].get_string().get(model) == SUCCESS && !model.empty())
        s->models[std::string(model)]++;
      double cost = get_double_or(b, "cost_usd", NAN);
      if (std::isfinite(cost)) {
        s->cost_usd += cost;
        s->has_cost = true;
      }
      finished = get_int_or(b, "finished_unix_ms", 0);
    }
  }

  s->lines++;
  // An invalid line without a custom_id is known by its line number.
  bool dup = has_id ? !r.ids.insert(custom_id).second
                    : (line > 0 && !r.invalid_lines_seen.insert(line).second);
  if (dup) s->duplicates++;

  if (!is_error) {
    s->ok++;
    if (cached) s->cached++;
  } else if (code == "invalid_request") {
    s->invalid++;
    if (s->invalid_lines.size() < kMaxInvalidKept) s->invalid_lines.push_back({line, message});
  } else {
    s->failed++;
    if (cached) s->cached++;
  }
  if (is_error) {
    std::string kind = code.empty() ? "error" : code;
    if (kind == "http_error" && status_code != 0) kind += fmt::format(" {}", status_code);
    s->errors[kind]++;
  }
  if (!is_error && !cached) {
    if (std::isfinite(latency)) s->latency_ms.push_back(latency);
    if (std::isfinite(ttfb) && ttfb >= 0) s->ttfb_ms.push_back(ttfb);
  }
  if (finished > 0 && code != "invalid_request") {
    s->finished_ms.push_back(finished);
    s->finished_latency_ms.push_back(std::isfinite(latency) ? latency : 0);
  }
  return true;
}

// A last line without a newline is taken when it parses completely (a file
// written by another tool), and counted as torn otherwise.
bool complete_json(const std::string& text) {
  simdjson::dom::parser p;
  simdjson::dom::element e;
  return p.parse(text).get(e) == simdjson::SUCCESS && e.is_object();
}

struct Stat {
  size_t n = 0;
  double min = NAN, avg = NAN, p50 = NAN, p90 = NAN, p99 = NAN, max = NAN;
};

Stat stat_of(std::vector<double> v) {
  Stat s;
  s.n = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.min = v.front();
  s.max = v.back();
  s.avg = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  s.p50 = percentile(v, 50);
  s.p90 = percentile(v, 90);
  s.p99 = percentile(v, 99);
  return s;
}

// Requests per second over the file: from the first start (finish minus
// latency) to the last finish. NaN when the file has no timestamps.
double file_throughput(const BatchSummary& s, double* span_s) {
  if (s.finished_ms.empty()) return NAN;
  double first = std::numeric_limits<double>::infinity(), last = 0;
  for (size_t i = 0; i < s.finished_ms.size(); ++i) {
    double f = static_cast<double>(s.finished_ms[i]);
    first = std::min(first, f - s.finished_latency_ms[i]);
    last = std::max(last, f);
  }
  double span = (last - first) / 1000.0;
  if (span_s != nullptr) *span_s = span;
  return span > 0 ? static_cast<double>(s.finished_ms.size()) / span : NAN;
}

double throughput(const BatchSummary& s, const RunFigures* run, std::string* basis) {
  if (run != nullptr && run->elapsed_s > 0 && run->written > 0) {
    *basis = "this run";
    return static_cast<double>(run->written) / run->elapsed_s;
  }
  double span = 0;
  double t = file_throughput(s, &span);
  *basis = std::isfinite(t) ? fmt::format("first start to last finish, {:.1f} s", span) : "";
  return t;
}

std::string stat_text(const Stat& st) {
  if (st.n == 0) return "n/a";
  return fmt::format("min {:.1f}  avg {:.1f}  p50 {:.1f}  p90 {:.1f}  p99 {:.1f}  max {:.1f}",
                     st.min, st.avg, st.p50, st.p90, st.p99, st.max);
}

std::string stat_json(const Stat& st) {
  return fmt::format(
      "{{\"count\":{},\"min\":{},\"avg\":{},\"p50\":{},\"p90\":{},\"p99\":{},\"max\":{}}}", st.n,
      json_number(st.min), json_number(st.avg), json_number(st.p50), json_number(st.p90),
      json_number(st.p99), json_number(st.max));
}

std::string percent(uint64_t part, uint64_t whole) {
  if (whole == 0) return "n/a";
  double p = 100.0 * static_cast<double>(part) / static_cast<double>(whole);
  // 99.996 % must not print as 100.00 %: only a complete success says 100.
  if (part != whole && p > 99.99) p = 99.99;
  return fmt::format("{:.2f}%", p);
}

// Quotes a path for a gnuplot single-quoted string ('' is a literal ').
std::string gp_quote(const std::string& s) {
  std::string o = "'";
  for (char c : s) {
    if (c == '\'')
      o += "''";
    else
      o += c;
  }
  return o + "'";
}

std::string find_in_path(const char* name) {
  const char* path = std::getenv("PATH");
  std::string p = path != nullptr ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    std::string dir = end > start ? p.substr(start, end - start) : std::string(".");
    std::string full = fmt::format("{}/{}", dir, name);
    if (access(full.c_str(), X_OK) == 0) return full;
    start = end + 1;
  }
  return "";
}

bool write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  f.close();
  return !f.fail();
}

}  // namespace

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return NAN;
  double rank = std::ceil(p / 100.0 * static_cast<double>(sorted.size()));
  size_t i = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return sorted[std::min(i, sorted.size() - 1)];
}

bool read_batch_output(const std::string& path, BatchSummary* s, std::string* err) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *err = fmt::format("cannot open {}: {}", path, std::strerror(errno));
    return false;
  }
  s->path = path;
  LineReader r;
  std::string buf;
  uint64_t file_line = 0;
  while (std::getline(in, buf)) {
    ++file_line;
    bool last_without_newline = in.eof();
    if (buf.empty() || buf.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (last_without_newline && !complete_json(buf)) {
      s->torn_tail = true;
      break;
    }
    if (!add_line(r, buf, s)) {
      s->unparsable++;
      if (s->unparsable_at.size() < kMaxUnparsableListed) s->unparsable_at.push_back(file_line);
    }
  }
  if (in.bad()) {
    *err = fmt::format("cannot read {}: {}", path, std::strerror(errno));
    return false;
  }
  return true;
}

void print_summary(std::FILE* f, const BatchSummary& s, const RunFigures* run, size_t max_invalid) {
  uint64_t n = s.requests();
  fmt::print(f, "{}: {} requests: {} ok ({}), {} failed, {} invalid input lines, {} from cache\n",
             s.path, n, s.ok, percent(s.ok, n), s.failed, s.invalid, s.cached);
  if (run != nullptr) {
    fmt::print(f,
               "this run:   {} written, {} skipped (already in the output or another shard), "
               "{:.2f} s{}\n",
               run->written, run->skipped, run->elapsed_s,
               run->stopped ? fmt::format(", stopped early: {} not run (continue with --resume)",
                                          run->total > run->written ? run->total - run->written : 0)
                            : "");
  }
  if (!s.errors.empty()) {
    std::string parts;
    for (const auto& [kind, count] : s.errors)
      parts += fmt::format("{}{} {}", parts.empty() ? "" : ", ", kind, count);
    fmt::print(f, "errors:     {}\n", parts);
  }
  if (!s.invalid_lines.empty()) {
    fmt::print(f, "invalid input lines ({}):\n", s.invalid);
    size_t shown = 0;
    for (const InvalidLine& l : s.invalid_lines) {
      if (shown++ == max_invalid) break;
      // The runner's messages may name the line themselves already.
      std::string_view msg = l.message;
      std::string own = fmt::format("line {}: ", l.line);
      if (msg.substr(0, own.size()) == own) msg.remove_prefix(own.size());
      fmt::print(f, "  line {}: {}\n", l.line, msg.empty() ? "invalid request" : msg);
    }
    if (s.invalid > max_invalid)
      fmt::print(f, "  ... and {} more (barrage stats --json {} lists them all)\n",
                 s.invalid - max_invalid, s.path);
  }
  std::string basis;
  double rps = throughput(s, run, &basis);
  if (std::isfinite(rps)) fmt::print(f, "throughput: {:.1f} req/s ({})\n", rps, basis);
  Stat lat = stat_of(s.latency_ms);
  Stat ttfb = stat_of(s.ttfb_ms);
  fmt::print(f, "latency ms: {}{}\n", stat_text(lat),
             lat.n > 0 ? fmt::format("  ({} answers from the network)", lat.n) : "");
  fmt::print(f, "ttfb ms:    {}\n", stat_text(ttfb));
  fmt::print(f, "tokens:     {} prompt + {} completion = {}\n", grouped(s.prompt_tokens),
             grouped(s.completion_tokens), grouped(s.prompt_tokens + s.completion_tokens));
  if (s.has_cost) {
    fmt::print(f, "cost:       ${:.4f}\n", s.cost_usd);
  } else {
    fmt::print(f, "cost:       n/a (no priced model in the file)\n");
  }
  if (s.duplicates > 0)
    fmt::print(f, "warning:    {} custom_id(s) appear more than once in the file\n", s.duplicates);
  if (s.unparsable > 0) {
    std::string at;
    for (uint64_t l : s.unparsable_at) at += fmt::format("{}{}", at.empty() ? "" : ", ", l);
    fmt::print(f, "warning:    {} line(s) are not JSON objects (file line {}{})\n", s.unparsable,
               at, s.unparsable > s.unparsable_at.size() ? ", ..." : "");
  }
  if (s.torn_tail)
    fmt::print(f,
               "note:       the last line is torn (written when the run was killed); "
               "`barrage run --resume` drops it\n");
}

std::string summary_json(const BatchSummary& s, const RunFigures* run) {
  std::string o = "{";
  uint64_t n = s.requests();
  o += fmt::format(
      "\"file\":{},\"requests\":{},\"ok\":{},\"failed\":{},\"invalid\":{},\"cached\":{},",
      json_escape(s.path), n, s.ok, s.failed, s.invalid, s.cached);
  o += fmt::format("\"success_rate\":{},",
                   n > 0 ? json_number(static_cast<double>(s.ok) / n) : "null");
  o += "\"errors\":{";
  bool first = true;
  for (const auto& [kind, count] : s.errors) {
    o += fmt::format("{}{}:{}", first ? "" : ",", json_escape(kind), count);
    first = false;
  }
  o += "},\"invalid_lines\":[";
  first = true;
  for (const InvalidLine& l : s.invalid_lines) {
    o += fmt::format("{}{{\"line\":{},\"message\":{}}}", first ? "" : ",", l.line,
                     json_escape(l.message));
    first = false;
  }
  o += "],";
  std::string basis;
  double rps = throughput(s, run, &basis);
  o += fmt::format("\"duplicates\":{},\"unparsable\":{},\"torn_tail\":{},\"throughput_rps\":{},",
                   s.duplicates, s.unparsable, s.torn_tail ? "true" : "false", json_number(rps));
  o += fmt::format("\"latency_ms\":{},\"ttfb_ms\":{},", stat_json(stat_of(s.latency_ms)),
                   stat_json(stat_of(s.ttfb_ms)));
  o +=
      fmt::format("\"prompt_tokens\":{},\"completion_tokens\":{},\"cost_usd\":{},", s.prompt_tokens,
                  s.completion_tokens, s.has_cost ? json_number(s.cost_usd) : "null");
  o += "\"models\":{";
  first = true;
  for (const auto& [model, count] : s.models) {
    o += fmt::format("{}{}:{}", first ? "" : ",", json_escape(model), count);
    first = false;
  }
  o += "}";
  if (run != nullptr) {
    o += fmt::format(
        ",\"run\":{{\"written\":{},\"skipped\":{},\"total\":{},\"ok\":{},\"failed\":{},"
        "\"invalid\":{},\"cached\":{},\"elapsed_s\":{},\"stopped\":{}}}",
        run->written, run->skipped, run->total, run->ok, run->failed, run->invalid, run->cached,
        json_number(run->elapsed_s), run->stopped ? "true" : "false");
  }
  o += "}";
  return o;
}

bool write_metrics(const std::string& path, const BatchSummary& s, const RunFigures* run,
                   std::string* err) {
  std::string m;
  auto gauge = [&](const char* name, const char* help) {
    m += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", name, help, name);
  };
  gauge("barrage_batch_requests", "Requests in the batch output file, by result.");
  m += fmt::format("barrage_batch_requests{{result=\"ok\"}} {}\n", s.ok);
  m += fmt::format("barrage_batch_requests{{result=\"failed\"}} {}\n", s.failed);
  m += fmt::format("barrage_batch_requests{{result=\"invalid\"}} {}\n", s.invalid);
  gauge("barrage_batch_cache_hits", "Answers served from the response cache.");
  m += fmt::format("barrage_batch_cache_hits {}\n", s.cached);
  gauge("barrage_batch_errors", "Failed requests by error kind.");
  for (const auto& [kind, count] : s.errors) {
    size_t sp = kind.find(' ');
    std::string code = kind.substr(0, sp);
    std::string status = sp == std::string::npos ? "" : kind.substr(sp + 1);
    m += fmt::format("barrage_batch_errors{{code=\"{}\",status=\"{}\"}} {}\n", prom_label(code),
                     prom_label(status), count);
  }
  gauge("barrage_batch_success_ratio", "Share of requests that succeeded.");
  uint64_t n = s.requests();
  m += fmt::format("barrage_batch_success_ratio {}\n",
                   n > 0 ? fmt::format("{:.6g}", static_cast<double>(s.ok) / n) : "NaN");
  std::string basis;
  double rps = throughput(s, run, &basis);
  gauge("barrage_batch_throughput_requests_per_second", "Results written per second.");
  m += fmt::format("barrage_batch_throughput_requests_per_second {}\n",
                   std::isfinite(rps) ? fmt::format("{:.6g}", rps) : "NaN");
  auto summary = [&](const char* name, const char* help, const std::vector<double>& ms) {
    m += fmt::format("# HELP {} {}\n# TYPE {} summary\n", name, help, name);
    std::vector<double> v = ms;
    std::sort(v.begin(), v.end());
    for (double q : {0.5, 0.9, 0.99}) {
      double x = percentile(v, q * 100);
      m += fmt::format("{}{{quantile=\"{}\"}} {}\n", name, q,
                       std::isfinite(x) ? fmt::format("{:.6g}", x / 1000.0) : "NaN");
    }
    m += fmt::format("{}_sum {:.6g}\n", name, std::accumulate(v.begin(), v.end(), 0.0) / 1000.0);
    m += fmt::format("{}_count {}\n", name, v.size());
  };
  summary("barrage_batch_latency_seconds", "Latency of successful network answers.", s.latency_ms);
  summary("barrage_batch_ttfb_seconds", "Time to the first response byte.", s.ttfb_ms);
  gauge("barrage_batch_tokens", "LLM tokens from the answers' usage.");
  m += fmt::format("barrage_batch_tokens{{kind=\"prompt\"}} {}\n", s.prompt_tokens);
  m += fmt::format("barrage_batch_tokens{{kind=\"completion\"}} {}\n", s.completion_tokens);
  gauge("barrage_batch_cost_usd", "Estimated cost in US dollars.");
  m += fmt::format("barrage_batch_cost_usd {:.6g}\n", s.cost_usd);
  if (run != nullptr) {
    gauge("barrage_batch_run_seconds", "Wall time of the run that wrote these metrics.");
    m += fmt::format("barrage_batch_run_seconds {:.6g}\n", run->elapsed_s);
    gauge("barrage_batch_run_skipped", "Lines the run skipped (resume or shard).");
    m += fmt::format("barrage_batch_run_skipped {}\n", run->skipped);
  }
  std::string tmp = path + ".tmp";
  if (!write_text(tmp, m) || std::rename(tmp.c_str(), path.c_str()) != 0) {
    *err = fmt::format("cannot write metrics to {}: {}", path, std::strerror(errno));
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

int write_plot(const std::string& path, const BatchSummary& s, std::string* msg) {
  std::string gnuplot = find_in_path("gnuplot");
  if (gnuplot.empty()) {
    *msg = fmt::format("skipping --plot {}: gnuplot is not installed (apt-get install gnuplot-nox)",
                       path);
    return 77;
  }
  if (s.latency_ms.empty() && s.finished_ms.empty()) {
    *msg = fmt::format("skipping --plot {}: the file has no latency or timing figures", path);
    return 1;
  }
  const char* tmpdir = std::getenv("TMPDIR");
  std::string dir_template =
      std::string(tmpdir != nullptr && *tmpdir ? tmpdir : "/tmp") + "/barrage-plot-XXXXXX";
  if (mkdtemp(dir_template.data()) == nullptr) {
    *msg = fmt::format("cannot create a temporary directory: {}", std::strerror(errno));
    return 1;
  }
  const std::string dir = dir_template;
  const std::string lat_path = dir + "/latency.dat", tput_path = dir + "/throughput.dat",
                    script_path = dir + "/plot.gp";

  // Latency histogram: 40 bins up to a little past p99, the tail in the last.
  std::vector<double> lat = s.latency_ms;
  std::sort(lat.begin(), lat.end());
  std::string lat_data, lat_note;
  double bin = 1;
  if (!lat.empty()) {
    double top = std::max(percentile(lat, 99) * 1.1, lat.front() + 1e-3);
    constexpr int kBins = 40;
    bin = top / kBins;
    std::vector<uint64_t> counts(kBins, 0);
    uint64_t tail = 0;
    for (double v : lat) {
      auto i = static_cast<size_t>(v / bin);
      if (i >= kBins) {
        i = kBins - 1;
        ++tail;
      }
      counts[i]++;
    }
    for (int i = 0; i < kBins; ++i)
      lat_data += fmt::format("{:.6g} {}\n", (i + 0.5) * bin, counts[i]);
    if (tail > 0) lat_note = fmt::format(" ({} slower than {:.0f} ms in the last bar)", tail, top);
  } else {
    lat_data = "0 0\n";
  }
  // Throughput: finished results per second, in about 100 buckets.
  std::string tput_data;
  double width = 1;
  if (!s.finished_ms.empty()) {
    double first = std::numeric_limits<double>::infinity(), last = 0;
    for (size_t i = 0; i < s.finished_ms.size(); ++i) {
      first = std::min(first, static_cast<double>(s.finished_ms[i]) - s.finished_latency_ms[i]);
      last = std::max(last, static_cast<double>(s.finished_ms[i]));
    }
    double span_s = std::max((last - first) / 1000.0, 0.001);
    width = span_s / 100 < 1 ? std::max(span_s / 20, 0.05) : std::ceil(span_s / 100);
    auto buckets = static_cast<size_t>(span_s / width) + 1;
    std::vector<uint64_t> counts(buckets, 0);
    for (int64_t f : s.finished_ms) {
      auto i = static_cast<size_t>((static_cast<double>(f) - first) / 1000.0 / width);
      counts[std::min(i, buckets - 1)]++;
    }
    for (size_t i = 0; i < buckets; ++i)
      tput_data += fmt::format("{:.6g} {:.6g}\n", static_cast<double>(i) * width,
                               static_cast<double>(counts[i]) / width);
  } else {
    tput_data = "0 0\n";
  }
  std::string script = fmt::format(
      "set terminal pngcairo size 1280,520 font 'sans,10'\n"
      "set output {out}\n"
      "set multiplot layout 1,2 title {title}\n"
      "set style fill solid 0.7 border -1\n"
      "set grid ytics\n"
      "set xrange [0:*]\nset yrange [0:*]\n"
      "set title {lat_title}\n"
      "set xlabel 'latency (ms)'\nset ylabel 'requests'\n"
      "set boxwidth {bin:.6g}\n"
      "plot {lat} using 1:2 with boxes lc rgb '#3b6ea5' notitle\n"
      "set title 'throughput over time'\n"
      "set xlabel 'seconds since the first request'\nset ylabel 'results per second'\n"
      "set boxwidth {width:.6g}\n"
      "plot {tput} using ($1+{half:.6g}):2 with boxes lc rgb '#5a9e4b' notitle\n"
      "unset multiplot\n",
      fmt::arg("out", gp_quote(path)),
      fmt::arg("title",
               gp_quote(fmt::format("{}: {} requests, {} ok", s.path, s.requests(), s.ok))),
      fmt::arg("lat_title",
               gp_quote(fmt::format("latency of {} network answers{}", lat.size(), lat_note))),
      fmt::arg("bin", bin), fmt::arg("lat", gp_quote(lat_path)), fmt::arg("width", width),
      fmt::arg("half", width / 2), fmt::arg("tput", gp_quote(tput_path)));
  int rc = 1;
  if (!write_text(lat_path, lat_data) || !write_text(tput_path, tput_data) ||
      !write_text(script_path, script)) {
    *msg = fmt::format("cannot write the plot data under {}", dir);
  } else {
    char* argv[] = {gnuplot.data(), const_cast<char*>(script_path.c_str()), nullptr};
    // `barrage run` keeps SIGINT and SIGTERM blocked (stop_signals.hpp);
    // gnuplot should not inherit that.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    pid_t pid = 0;
    int e = posix_spawn(&pid, gnuplot.c_str(), nullptr, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    int status = 0;
    if (e != 0) {
      *msg = fmt::format("cannot run {}: {}", gnuplot, std::strerror(e));
    } else if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      *msg = fmt::format("gnuplot failed to draw {} (its messages are above)", path);
    } else {
      *msg = fmt::format("wrote {} (latency histogram and throughput over time)", path);
      rc = 0;
    }
  }
  for (const std::string& p : {lat_path, tput_path, script_path}) std::remove(p.c_str());
  rmdir(dir.c_str());
  return rc;
}

int summary_exit_code(const BatchSummary& s) { return s.not_ok() > 0 ? 1 : 0; }

}  // namespace barrage::cli
