// `barrage run IN.jsonl -o OUT.jsonl`: runs an OpenAI Batch API input file
// through brg_batch_run against any OpenAI-compatible endpoint, with
// progress on stderr, a clean stop on the first Ctrl-C and a summary read
// back from the output file at the end (the same as `barrage stats`).
//
// Settings come in layers, later ones winning: the environment
// (brg_config_from_env, OPENAI_BASE_URL), then --config FILE (TOML, with
// per-endpoint tables), then flags. The API key is only ever read from an
// environment variable by the library; this file never sees its value.
#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "batch_summary.hpp"
#include "brg_handles.hpp"
#include "commands.hpp"
#include "input_scan.hpp"
#include "progress_display.hpp"
#include "run_settings.hpp"
#include "stop_signals.hpp"

namespace barrage::cli {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInterrupted = 130;
constexpr const char* kDefaultEndpoint = "https://api.openai.com";
constexpr const char* kDefaultKeyEnv = "OPENAI_API_KEY";
constexpr size_t kDryRunInvalidListed = 50;

struct RunArgs {
  std::string input, output, config, shard, prices, cache, metrics, plot, ca_file;
  std::string shared_limits, shared_namespace;
  std::string backend = "auto";
  std::vector<std::string> headers;
  std::string refused_api_key;  // --api-key: only to refuse it
  bool ordered = false, resume = false, dry_run = false, quiet = false, insecure = false;
  int64_t cache_ttl = 0;
  RunSettings flags;  // filled from the options below after parsing
  std::string endpoint, api_key_env;
  int64_t concurrency = 0, rps = 0, burst = 0, tpm = 0, retries = 0;
  double rate_period = 0, timeout = 0, deadline = 0, connect_timeout = 0;
  struct Given {
    CLI::Option *endpoint, *api_key_env, *concurrency, *rps, *rate_period, *burst, *tpm, *timeout,
        *deadline, *retries, *connect_timeout, *api_key, *cache_ttl, *backend;
  } given{};
};

// What the run needs once the layers are resolved.
struct Plan {
  RunSettings settings;
  std::string endpoint;
  std::string api_key_env;
  uint32_t shard_index = 0, shard_count = 0;
};

void usage_error(const std::string& msg) { fmt::print(stderr, "barrage run: {}\n", msg); }

bool parse_shard(const std::string& text, uint32_t* index, uint32_t* count, std::string* err) {
  unsigned long i = 0, n = 0;
  char tail = 0;
  if (std::sscanf(text.c_str(), "%lu/%lu%c", &i, &n, &tail) != 2 || n == 0 || n > 1000000) {
    *err =
        fmt::format("--shard '{}' needs the form i/n, e.g. 0/4 (shards are numbered 0..n-1)", text);
    return false;
  }
  if (i >= n) {
    *err =
        fmt::format("--shard {}: shards are numbered from 0, so i must be below n (0/{} .. {}/{})",
                    text, n, n - 1, n);
    return false;
  }
  *index = static_cast<uint32_t>(i);
  *count = static_cast<uint32_t>(n);
  return true;
}

// The flag layer: only options given on the command line.
RunSettings flag_layer(const RunArgs& a) {
  RunSettings s;
  auto given = [](CLI::Option* o) { return o != nullptr && o->count() > 0; };
  const char* src = "flag";
  if (given(a.given.endpoint)) s.endpoint = a.endpoint, s.source["endpoint"] = src;
  if (given(a.given.api_key_env)) s.api_key_env = a.api_key_env, s.source["api_key_env"] = src;
  Limits& l = s.limits;
  if (given(a.given.concurrency)) l.concurrency = a.concurrency, s.source["concurrency"] = src;
  if (given(a.given.rps)) l.rps = a.rps, s.source["rps"] = src;
  if (given(a.given.rate_period)) l.rate_period_s = a.rate_period, s.source["rate_period"] = src;
  if (given(a.given.burst)) l.burst = a.burst, s.source["burst"] = src;
  if (given(a.given.tpm)) l.tpm = a.tpm, s.source["tpm"] = src;
  if (given(a.given.timeout)) l.timeout_s = a.timeout, s.source["timeout"] = src;
  if (given(a.given.deadline)) l.deadline_s = a.deadline, s.source["deadline"] = src;
  if (given(a.given.retries)) l.retries = a.retries, s.source["retries"] = src;
  if (given(a.given.connect_timeout))
    l.connect_timeout_s = a.connect_timeout, s.source["connect_timeout"] = src;
  return s;
}

// Checks the command line and resolves the layers. Returns kExitOk or the
// exit status to stop with (a message was printed).
int make_plan(const RunArgs& a, Plan* plan) {
  if (a.given.api_key != nullptr && a.given.api_key->count() > 0) {
    usage_error(
        "--api-key is not accepted: a key on the command line leaks into `ps`, shell history and "
        "logs. Put it in the environment (export OPENAI_API_KEY=...) or name another variable "
        "with --api-key-env NAME");
    return kExitUsage;
  }
  if (a.output.empty() && !a.dry_run) {
    usage_error("-o/--output is required (the output file is also the checkpoint for --resume)");
    return kExitUsage;
  }
  std::string err;
  RunSettings flags = flag_layer(a);
  for (const std::string& h : a.headers) {
    std::pair<std::string, std::string> kv;
    if (!parse_header_flag(h, &kv, &err)) {
      usage_error(err);
      return kExitUsage;
    }
    if (is_secret_header(kv.first)) {
      usage_error(fmt::format(
          "--header {}: credentials are not accepted on the command line; the key is read from "
          "the environment variable named by --api-key-env (default {}) and sent as "
          "'Authorization: Bearer', or put the header in a --config file",
          kv.first, kDefaultKeyEnv));
      return kExitUsage;
    }
    flags.headers.push_back(kv);
  }
  if (a.given.api_key_env != nullptr && a.given.api_key_env->count() > 0 &&
      (a.api_key_env.empty() || a.api_key_env.find_first_of("= \t") != std::string::npos)) {
    usage_error("--api-key-env takes the NAME of an environment variable, not a key");
    return kExitUsage;
  }
  if (!a.shard.empty() && !parse_shard(a.shard, &plan->shard_index, &plan->shard_count, &err)) {
    usage_error(err);
    return kExitUsage;
  }

  RunSettings env;
  if (!environment_layer(&env, &err)) {
    usage_error(err);
    return kExitUsage;
  }
  ConfigFile file;
  if (!a.config.empty() && !load_config_file(a.config, &file, &err)) {
    usage_error(err);
    return kExitUsage;
  }
  // The endpoint decides which [endpoints."URL"] table applies, so it is
  // resolved first, by the same precedence as everything else.
  std::string endpoint = flags.endpoint      ? *flags.endpoint
                         : file.top.endpoint ? *file.top.endpoint
                         : env.endpoint      ? *env.endpoint
                                             : kDefaultEndpoint;
  plan->settings = env;
  merge(&plan->settings, file.top);
  if (const RunSettings* t = endpoint_table(file, endpoint)) merge(&plan->settings, *t);
  merge(&plan->settings, flags);
  plan->endpoint = endpoint;
  if (!plan->settings.endpoint) plan->settings.source["endpoint"] = "default";
  plan->api_key_env = plan->settings.api_key_env.value_or(kDefaultKeyEnv);
  if (endpoint.rfind("https://", 0) != 0 && endpoint.rfind("http://", 0) != 0) {
    usage_error(
        fmt::format("endpoint '{}' must start with https:// (or http:// for a local test "
                    "server)",
                    endpoint));
    return kExitUsage;
  }
  return kExitOk;
}

// Builds the engine configuration: environment, then the merged limits,
// then the flags that only exist on the command line. kExitOk or a status.
int make_config(const RunArgs& a, const Plan& plan, ConfigPtr* out) {
  ConfigPtr cfg(brg_config_new());
  if (!cfg) {
    usage_error("out of memory");
    return kExitFailed;
  }
  if (brg_config_from_env(cfg.get()) != 0) {
    usage_error(brg_config_error(cfg.get()));
    return kExitUsage;
  }
  std::string err;
  if (!apply_limits(plan.settings.limits, cfg.get(), &err)) {
    usage_error(err);
    return kExitUsage;
  }
  auto set_int = [&](brg_option o, int64_t v) { return brg_config_set_int(cfg.get(), o, v) == 0; };
  auto set_str = [&](brg_option o, const std::string& v) {
    return brg_config_set_str(cfg.get(), o, v.c_str()) == 0;
  };
  bool ok = true;
  if (a.given.backend != nullptr && a.given.backend->count() > 0) {
    ok &= set_int(BRG_OPT_BACKEND, a.backend == "io_uring" ? BRG_BACKEND_IO_URING
                                   : a.backend == "epoll"  ? BRG_BACKEND_EPOLL
                                                           : BRG_BACKEND_AUTO);
  }
  if (!a.ca_file.empty()) ok &= set_str(BRG_OPT_CA_FILE, a.ca_file);
  if (a.insecure) ok &= set_int(BRG_OPT_VERIFY_PEER, 0);
  if (!a.cache.empty()) ok &= set_str(BRG_OPT_CACHE_PATH, a.cache);
  if (!a.shared_limits.empty()) ok &= set_str(BRG_OPT_SHARED_LIMITS, a.shared_limits);
  if (!a.shared_namespace.empty()) ok &= set_str(BRG_OPT_SHARED_NAMESPACE, a.shared_namespace);
  if (a.given.cache_ttl != nullptr && a.given.cache_ttl->count() > 0)
    ok &= set_int(BRG_OPT_CACHE_TTL_S, a.cache_ttl);
  // A plain http:// endpoint is an explicit choice (a local mock or proxy).
  if (plan.endpoint.rfind("http://", 0) == 0) ok &= set_int(BRG_OPT_ALLOW_HTTP, 1);
  if (!ok) {
    usage_error(brg_config_error(cfg.get()));
    return kExitUsage;
  }
  *out = std::move(cfg);
  return kExitOk;
}

std::string seconds_text(const std::optional<double>& s, const char* unset) {
  if (!s) return unset;
  return fmt::format("{:g} s", *s);
}

std::string source_of(const RunSettings& s, const char* key) {
  auto it = s.source.find(key);
  return it == s.source.end() ? "default" : it->second;
}

// What --dry-run prints after the batch runner validated the file.
void print_dry_run(const RunArgs& a, const Plan& p, const InputScan& scan,
                   const brg_batch_progress& fin) {
  const Limits& l = p.settings.limits;
  const RunSettings& s = p.settings;
  fmt::print("dry run: nothing is sent and nothing is written\n");
  fmt::print("input:       {}: {} lines, {} valid, {} invalid\n", a.input, scan.lines, scan.valid,
             scan.invalid.size());
  size_t shown = 0;
  for (const std::string& message : scan.invalid) {
    if (shown++ == kDryRunInvalidListed) {
      fmt::print("  ... and {} more\n", scan.invalid.size() - kDryRunInvalidListed);
      break;
    }
    fmt::print("  {}\n", message);  // "line N: why"
  }
  if (fin.invalid != scan.invalid.size() && fin.skipped == 0) {
    fmt::print("  (the batch runner counts {} invalid line(s))\n", fin.invalid);
  }
  for (const auto& [url, n] : scan.by_url) fmt::print("url:         {} x{}\n", url, n);
  for (const auto& [model, n] : scan.by_model) fmt::print("model:       {} x{}\n", model, n);
  uint64_t to_send = fin.total > fin.invalid ? fin.total - fin.invalid : 0;
  fmt::print("would run:   {} request(s){}{}\n", to_send,
             fin.invalid > 0
                 ? fmt::format(" ({} invalid line(s) would be written as errors)", fin.invalid)
                 : "",
             fin.skipped > 0 ? fmt::format(", skipping {} (already in {} or in another shard)",
                                           fin.skipped, a.output.empty() ? "the output" : a.output)
                             : "");
  if (p.shard_count > 1)
    fmt::print("shard:       {}/{} (lines whose index % {} == {})\n", p.shard_index, p.shard_count,
               p.shard_count, p.shard_index);
  fmt::print("endpoint:    {} ({})\n", p.endpoint, source_of(s, "endpoint"));
  const char* key = std::getenv(p.api_key_env.c_str());
  fmt::print("auth:        Authorization: Bearer ${} ({})\n", p.api_key_env,
             key != nullptr && key[0] != '\0' ? "set" : "NOT SET");
  for (const auto& [name, value] : s.headers) fmt::print("header:      {}: (value hidden)\n", name);
  fmt::print("concurrency: {} ({})\n", l.concurrency ? std::to_string(*l.concurrency) : "256",
             source_of(s, "concurrency"));
  if (l.rps && *l.rps > 0) {
    std::string rps_src = source_of(s, "rps"), period_src = source_of(s, "rate_period");
    fmt::print(
        "rate:        {} requests per {} ({})\n", *l.rps, seconds_text(l.rate_period_s, "60 s"),
        rps_src == period_src ? rps_src : fmt::format("{}; period: {}", rps_src, period_src));
  } else {
    fmt::print("rate:        no request rate limit\n");
  }
  if (l.burst && *l.burst > 0)
    fmt::print("burst:       {} ({})\n", *l.burst, source_of(s, "burst"));
  fmt::print("tpm:         {}\n", l.tpm && *l.tpm > 0 ? fmt::format("{} tokens per minute ({})",
                                                                    *l.tpm, source_of(s, "tpm"))
                                                      : "no token limit");
  fmt::print("timeout:     {} per attempt ({})\n", seconds_text(l.timeout_s, "600 s"),
             source_of(s, "timeout"));
  fmt::print("deadline:    {}\n",
             l.deadline_s && *l.deadline_s > 0
                 ? fmt::format("{:g} s per request ({})", *l.deadline_s, source_of(s, "deadline"))
                 : "none");
  fmt::print("retries:     {} ({})\n", l.retries ? std::to_string(*l.retries) : "2",
             source_of(s, "retries"));
  fmt::print("connect:     {} timeout ({})\n", seconds_text(l.connect_timeout_s, "10 s"),
             source_of(s, "connect_timeout"));
  fmt::print("cache:       {}\n", a.cache.empty() ? "off" : a.cache);
  fmt::print("output:      {}{}\n", a.output.empty() ? "(none given)" : a.output,
             a.ordered ? ", in input order" : "");
}

struct ProgressState {
  ProgressDisplay* display;
  int stop_level = 0;  // what the callback returns: 0 go on, 1 stop starting, 2 abort
  bool had_progress = false;
  brg_batch_progress last{};
};

brg_batch_progress copy_progress(const brg_batch_progress* p) {
  brg_batch_progress q{};
  std::memcpy(&q, p, std::min<size_t>(p->size, sizeof q));
  q.size = sizeof q;
  return q;
}

// The progress callback, on the thread running the batch. The stop signals
// are blocked (stop_signals.hpp), so they are taken here synchronously: no
// handler, nothing async-signal-unsafe.
int on_progress(const brg_batch_progress* p, void* user) noexcept {
  auto* st = static_cast<ProgressState*>(user);
  try {
    st->last = copy_progress(p);
    st->had_progress = true;
    if (take_stop_signal() != 0) {
      if (st->stop_level == 0) {
        st->stop_level = 1;
        st->display->message(
            fmt::format("stopping: finishing {} in-flight requests (press Ctrl-C again to abort)",
                        st->last.in_flight));
      } else if (st->stop_level == 1) {
        st->stop_level = 2;
        st->display->message(
            fmt::format("aborting: cancelling {} in-flight requests (a --resume runs them again)",
                        st->last.in_flight));
      }
    }
    st->display->update(st->last);
  } catch (...) {
    // Printing failed (stderr gone?): keep running, the output file matters.
  }
  return st->stop_level;
}

void finish_outputs(const RunArgs& a, const BatchSummary& s, const RunFigures& run, int* rc) {
  std::string err;
  if (!a.metrics.empty() && !write_metrics(a.metrics, s, &run, &err)) {
    fmt::print(stderr, "barrage run: {}\n", err);
    *rc = std::max(*rc, kExitFailed);
  }
  if (!a.plot.empty()) {
    std::string msg;
    int prc = write_plot(a.plot, s, &msg);
    if (prc == 0) {
      if (!a.quiet) fmt::print(stderr, "barrage run: {}\n", msg);
    } else {
      fmt::print(stderr, "barrage run: {}\n", msg);
      if (prc != 77) *rc = std::max(*rc, kExitFailed);
    }
  }
}

int run_batch(const RunArgs& a) {
  // First, before anything could start a thread: the signals stay pending
  // until the progress callback takes them.
  block_stop_signals();

  Plan plan;
  if (int rc = make_plan(a, &plan); rc != kExitOk) return rc;
  {
    std::FILE* f = std::fopen(a.input.c_str(), "rb");
    if (f == nullptr) {
      usage_error(fmt::format("cannot read {}: {}", a.input, std::strerror(errno)));
      return kExitUsage;
    }
    std::fclose(f);
  }
  struct stat st {};
  if (!a.dry_run && !a.resume && stat(a.output.c_str(), &st) == 0 && st.st_size > 0) {
    usage_error(fmt::format(
        "{} already holds results: pass --resume to continue it (requests already there are "
        "skipped), or choose another output file",
        a.output));
    return kExitUsage;
  }
  ConfigPtr cfg;
  if (int rc = make_config(a, plan, &cfg); rc != kExitOk) return rc;
  if (a.insecure)
    fmt::print(stderr,
               "barrage run: warning: --insecure: TLS certificates are NOT verified; "
               "anyone on the path can read the prompts and the API key\n");
  const char* key = std::getenv(plan.api_key_env.c_str());
  if (!a.dry_run && (key == nullptr || key[0] == '\0') && !is_loopback_url(plan.endpoint)) {
    fmt::print(stderr,
               "barrage run: warning: ${} is not set: requests to {} go without an "
               "Authorization header\n",
               plan.api_key_env, plan.endpoint);
  }

  std::string err;
  EnginePtr engine = make_engine(cfg.get(), &err);
  if (!engine) {
    usage_error(err);
    return kExitFailed;
  }

  std::vector<brg_header> headers;
  headers.reserve(plan.settings.headers.size());
  for (const auto& [name, value] : plan.settings.headers)
    headers.push_back({name.c_str(), value.c_str()});

  brg_batch_options o{};
  o.size = sizeof o;
  o.flags = (a.resume ? BRG_BATCH_RESUME : 0u) | (a.ordered ? BRG_BATCH_ORDERED : 0u) |
            (a.dry_run ? BRG_BATCH_DRY_RUN : 0u);
  o.input_path = a.input.c_str();
  o.output_path = a.output.empty() ? nullptr : a.output.c_str();
  o.endpoint = plan.endpoint.c_str();
  o.api_key_env = plan.api_key_env.c_str();
  o.headers = headers.empty() ? nullptr : headers.data();
  o.n_headers = static_cast<uint32_t>(headers.size());
  o.prices_path = a.prices.empty() ? nullptr : a.prices.c_str();
  const Limits& l = plan.settings.limits;
  o.deadline_ms = l.deadline_s ? static_cast<int64_t>(std::llround(*l.deadline_s * 1000.0)) : 0;
  o.max_retries = -1;  // the engine's, which the retries setting configured
  o.shard_index = plan.shard_index;
  o.shard_count = plan.shard_count;

  ProgressDisplay display(
      a.dry_run ? ProgressDisplay::Mode::off : ProgressDisplay::pick_mode(stderr, a.quiet), stderr);
  ProgressState state{&display};
  brg_batch_progress fin{};
  fin.size = sizeof fin;
  int rc = brg_batch_run(engine.get(), &o, on_progress, &state, &fin);
  if (state.had_progress) display.finish(rc == 0 ? copy_progress(&fin) : state.last);
  if (rc == BRG_E_CANCELLED) {
    fmt::print(stderr,
               "barrage run: aborted; {} holds every result finished so far: rerun with --resume "
               "to do the rest\n",
               a.output);
    return kExitInterrupted;
  }
  if (rc != 0) {
    // BRG_E_INVALID covers what the runner finds before it sends anything:
    // unusable options, an unreadable input, an unwritable output, a
    // duplicate custom_id.
    const char* why = brg_last_error();
    usage_error(why != nullptr && why[0] != '\0' ? why : describe_status(rc, nullptr));
    return rc == BRG_E_INVALID ? kExitUsage : kExitFailed;
  }

  if (a.dry_run) {
    InputScan scan;
    if (!scan_input(a.input, plan.endpoint, &scan, &err)) {
      usage_error(err);
      return kExitUsage;
    }
    print_dry_run(a, plan, scan, fin);
    return scan.invalid.empty() && fin.invalid == 0 ? kExitOk : kExitFailed;
  }

  RunFigures run;
  run.written = fin.done;
  run.skipped = fin.skipped;
  run.total = fin.total;
  run.ok = fin.ok;
  run.failed = fin.failed;
  run.invalid = fin.invalid;
  run.cached = fin.cached;
  run.elapsed_s = fin.elapsed_s;
  run.stopped = state.stop_level > 0 && fin.done < fin.total;

  BatchSummary summary;
  if (!read_batch_output(a.output, &summary, &err)) {
    usage_error(err);
    return kExitFailed;
  }
  if (a.quiet) {
    fmt::print("{}: {} ok, {} failed, {} invalid, {} from cache; this run {} written, {} skipped\n",
               a.output, summary.ok, summary.failed, summary.invalid, summary.cached, run.written,
               run.skipped);
  } else {
    print_summary(stdout, summary, &run);
  }
  std::fflush(stdout);
  int exit_code = summary_exit_code(summary);
  finish_outputs(a, summary, run, &exit_code);
  if (run.stopped) return kExitInterrupted;
  return exit_code;
}

}  // namespace

Command add_run_command(CLI::App& parent) {
  auto a = std::make_shared<RunArgs>();
  CLI::App* app = parent.add_subcommand(
      "run", "Run an OpenAI Batch API JSONL file against an endpoint (resumable, with progress)");
  app->add_option("input", a->input, "Batch API input file (JSONL: custom_id, method, url, body)")
      ->required();
  app->add_option("-o,--output", a->output,
                  "output JSONL (Batch API output lines); also the checkpoint for --resume");
  auto& g = a->given;
  g.endpoint = app->add_option("--endpoint", a->endpoint,
                               "base URL for the input's /v1/... paths [env OPENAI_BASE_URL, "
                               "default https://api.openai.com]");
  g.api_key_env = app->add_option("--api-key-env", a->api_key_env,
                                  "NAME of the environment variable holding the API key "
                                  "[default OPENAI_API_KEY]; keys are never taken from flags");
  g.api_key = app->add_option("--api-key", a->refused_api_key, "refused: use the environment")
                  ->expected(0, 1)
                  ->group("");
  app->add_option("-H,--header", a->headers,
                  "extra header 'Name: value' for every request (repeatable)");
  app->add_option("--config", a->config, "TOML settings file (see below)")
      ->check(CLI::ExistingFile);
  app->add_flag("--ordered", a->ordered, "write results in input order");
  app->add_flag("--resume", a->resume,
                "continue an interrupted run: skip custom_ids already in the output");
  app->add_flag("--dry-run", a->dry_run,
                "validate the whole input and show what would run; send and write nothing");
  app->add_option("--shard", a->shard,
                  "run only shard i of n (0-based: 0/4 .. 3/4), by line index");
  app->add_option("--shared-limits", a->shared_limits,
                  "share --rps/--tpm with every process using this Redis: "
                  "redis://[user:password@]host:port[/db] [env BARRAGE_SHARED_LIMITS]");
  app->add_option("--shared-namespace", a->shared_namespace,
                  "Redis key prefix of the shared limits (default \"barrage\"; one per quota)");
  app->add_option("--prices", a->prices,
                  "JSON price table {\"model\":{\"input\":USD_per_1M,\"output\":USD_per_1M}}")
      ->check(CLI::ExistingFile);
  app->add_option("--cache", a->cache,
                  "SQLite response cache file; identical requests are answered from it");
  g.cache_ttl = app->add_option("--cache-ttl", a->cache_ttl,
                                "ignore cache entries older than SECONDS (0 = never)")
                    ->check(CLI::Range(int64_t{0}, INT64_MAX / 2));
  app->add_option("--metrics", a->metrics, "write Prometheus text-format metrics here at the end");
  app->add_option("--plot", a->plot, "draw latency histogram and throughput to this PNG (gnuplot)");
  app->add_flag("-q,--quiet", a->quiet, "no progress; a one-line result instead of the summary");
  app->add_option("--ca-file", a->ca_file, "PEM file of extra trusted CA certificates")
      ->check(CLI::ExistingFile);
  app->add_flag("--insecure", a->insecure, "do not verify TLS certificates (testing only)");
  g.backend = app->add_option("--backend", a->backend, "reactor backend: auto, io_uring or epoll")
                  ->check(CLI::IsMember({"auto", "io_uring", "epoll"}));
  g.concurrency = app->add_option("-c,--concurrency", a->concurrency,
                                  "requests in flight [env MAX_CONCURRENT_LLM; default 256]")
                      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  g.rps = app->add_option("--rps", a->rps,
                          "at most N requests per --rate-period (default 1 s) [env LLM_RATE_LIMIT]")
              ->check(CLI::Range(int64_t{0}, INT64_MAX / 2));
  g.rate_period = app->add_option("--rate-period", a->rate_period,
                                  "seconds the --rps budget refills over [env LLM_RATE_PERIOD]")
                      ->check(CLI::Range(0.001, 1e9));
  g.burst = app->add_option("--burst", a->burst, "requests allowed at once [default: --rps]")
                ->check(CLI::Range(int64_t{0}, INT64_MAX / 2));
  g.tpm = app->add_option("--tpm", a->tpm, "LLM tokens per minute (0 = no limit)")
              ->check(CLI::Range(int64_t{0}, INT64_MAX / 2));
  g.timeout = app->add_option("--timeout", a->timeout,
                              "seconds per attempt [env ASYNC_LLM_TIMEOUT; default 600]")
                  ->check(CLI::Range(0.001, 1e9));
  g.deadline = app->add_option("--deadline", a->deadline,
                               "seconds per request, retries included (0 = none) "
                               "[env BARRAGE_DEADLINE_MS]")
                   ->check(CLI::Range(0.0, 1e9));
  g.retries = app->add_option("--retries", a->retries, "retries per request [default 2]")
                  ->check(CLI::Range(int64_t{0}, int64_t{1000}));
  g.connect_timeout = app->add_option("--connect-timeout", a->connect_timeout,
                                      "seconds for connect + TLS handshake [default 10]")
                          ->check(CLI::Range(0.001, 1e9));
  app->footer(
      "Settings, later winning: environment (BARRAGE_*, MAX_CONCURRENT_LLM, LLM_RATE_LIMIT,\n"
      "LLM_RATE_PERIOD, ASYNC_LLM_TIMEOUT, OPENAI_BASE_URL), then --config FILE, then flags.\n"
      "The TOML file takes endpoint, concurrency, rps, rate_period, burst, tpm, timeout, "
      "deadline,\n"
      "retries, connect_timeout, api_key_env, headers = {\"Name\" = \"value\"}, and\n"
      "[endpoints.\"https://host\"] tables that override them for that endpoint. Unknown keys\n"
      "are an error.\n"
      "Progress goes to stderr (a live line on a terminal, a line every 5 s otherwise). The\n"
      "first Ctrl-C stops starting requests and lets those in flight finish; the second aborts.\n"
      "Either way the output stays valid: run again with --resume.\n"
      "Exit status: 0 every request succeeded, 1 some failed (or invalid input lines),\n"
      "2 usage or input-file errors (bad flags, unreadable file, duplicate custom_id),\n"
      "130 stopped by a signal before the end.\n"
      "Example: OPENAI_API_KEY=... barrage run batch.jsonl -o out.jsonl --rps 50 --tpm 2000000");
  return {app, [a] { return run_batch(*a); }};
}

}  // namespace barrage::cli
