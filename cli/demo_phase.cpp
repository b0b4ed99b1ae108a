// The request loop of `barrage demo`, driven inline with brg_poll on the
// calling thread. Each answer is checked against the request it claims to
// answer (by user_data and id), so a mixed-up or lost result is an error,
// not just a slow run.
#include "demo_phase.hpp"

#include <fmt/format.h>

#include <array>
#include <chrono>

#include "brg_handles.hpp"
#include "chat_json.hpp"
#include "stop_signals.hpp"

namespace barrage::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxProblems = 8;
constexpr int kPollSliceMs = 100;  // how soon Ctrl-C is noticed
// How long the loop waits without any result before it blames the engine:
// the per-attempt timeout must have fired by then.
constexpr auto kStallGrace = std::chrono::seconds(5);

class Phase {
 public:
  explicit Phase(const PhaseSpec& spec) : spec_(spec) {
    report_.requests = spec.requests;
    ids_.assign(spec.requests, 0);
    done_.assign(spec.requests, false);
    bodies_.reserve(spec.requests);
    for (size_t i = 0; i < spec.requests; ++i) bodies_.push_back(chat_request_body(i));
  }

  PhaseReport run() {
    if (!open_engine()) return std::move(report_);
    auto start = Clock::now();
    if (spec_.sequential) {
      for (size_t i = 0; i < spec_.requests && running(); ++i) {
        if (submit(i)) wait_for_outstanding();
      }
    } else {
      for (size_t i = 0; i < spec_.requests; ++i) submit(i);
      wait_for_outstanding();
    }
    report_.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
    report_.stats = read_stats(engine_.get());
    return std::move(report_);
  }

 private:
  bool running() const { return report_.fatal.empty() && !report_.interrupted; }

  bool open_engine() {
    ConfigPtr cfg(brg_config_new());
    if (!cfg) {
      report_.fatal = "brg_config_new: out of memory";
      return false;
    }
    if (!set_int(cfg.get(), BRG_OPT_BACKEND, spec_.backend, "BRG_OPT_BACKEND") ||
        !set_int(cfg.get(), BRG_OPT_MAX_INFLIGHT, spec_.max_inflight, "BRG_OPT_MAX_INFLIGHT") ||
        // HTTP/1.1 carries one request per connection at a time, so the
        // per-host connection cap (default 256) would otherwise quietly
        // lower the in-flight count the user asked for.
        !set_int(cfg.get(), BRG_OPT_MAX_CONNS_PER_HOST, spec_.max_inflight,
                 "BRG_OPT_MAX_CONNS_PER_HOST") ||
        !set_int(cfg.get(), BRG_OPT_TIMEOUT_MS, spec_.timeout_ms, "BRG_OPT_TIMEOUT_MS") ||
        // No faults are injected, so any failure is a finding: retries would
        // hide it and stretch the timings.
        !set_int(cfg.get(), BRG_OPT_MAX_RETRIES, 0, "BRG_OPT_MAX_RETRIES")) {
      return false;
    }
    int rc = brg_config_set_str(cfg.get(), BRG_OPT_CA_FILE, spec_.ca_file.c_str());
    if (rc != 0) {
      report_.fatal = "BRG_OPT_CA_FILE: " + describe_status(rc, brg_config_error(cfg.get()));
      return false;
    }
    engine_ = make_engine(cfg.get(), &report_.fatal);
    return engine_ != nullptr;
  }

  bool set_int(brg_config* cfg, brg_option opt, int64_t v, const char* name) {
    int rc = brg_config_set_int(cfg, opt, v);
    if (rc == 0) return true;
    report_.fatal = fmt::format("{} = {}: {}", name, v, describe_status(rc, brg_config_error(cfg)));
    return false;
  }

  bool submit(size_t i) {
    const std::string& body = bodies_[i];
    std::array<brg_header, 1> headers = {{{"content-type", "application/json"}}};
    brg_request req{};
    req.size = sizeof(req);
    req.url = spec_.url.c_str();
    req.headers = headers.data();
    req.n_headers = static_cast<uint32_t>(headers.size());
    req.body = body.data();
    req.body_len = body.size();
    req.user_data = i;
    req.max_retries = -1;
    int rc = brg_submit(engine_.get(), &req, &ids_[i]);
    if (rc != 0) {
      // A failed submit never produces a result, so it is not outstanding.
      fail(i, "brg_submit failed: " + describe_status(rc, brg_last_error()));
      done_[i] = true;
      return false;
    }
    ++outstanding_;
    return true;
  }

  void wait_for_outstanding() {
    auto last_progress = Clock::now();
    auto stall_limit = std::chrono::milliseconds(spec_.timeout_ms) + kStallGrace;
    while (outstanding_ > 0 && running()) {
      int rc = brg_poll(engine_.get(), kPollSliceMs);
      if (rc < 0) {
        report_.fatal = "brg_poll failed: " + describe_status(rc, nullptr);
        return;
      }
      if (take_results() > 0) last_progress = Clock::now();
      if (take_stop_signal() != 0) report_.interrupted = true;
      if (Clock::now() - last_progress > stall_limit) {
        report_.fatal = fmt::format(
            "no result for {:.1f} s with {} request(s) outstanding, although the per-attempt "
            "timeout is {} ms: the engine lost them",
            std::chrono::duration<double>(Clock::now() - last_progress).count(), outstanding_,
            spec_.timeout_ms);
        return;
      }
    }
  }

  size_t take_results() {
    std::array<brg_result*, 64> batch{};
    size_t total = 0;
    for (;;) {
      size_t n = brg_results(engine_.get(), batch.data(), batch.size());
      for (size_t k = 0; k < n; ++k) check(ResultPtr(batch[k]));
      total += n;
      if (n < batch.size()) return total;
    }
  }

  void check(ResultPtr r) {
    if (r->user_data >= spec_.requests || done_[r->user_data] || r->id != ids_[r->user_data]) {
      problem(fmt::format("unexpected result: id {} user_data {} (no such outstanding request)",
                          r->id, r->user_data));
      ++report_.errors;
      return;
    }
    size_t i = r->user_data;
    done_[i] = true;
    --outstanding_;
    if (r->status != BRG_OK) {
      return fail(i,
                  fmt::format("{} (http {}, {} attempt(s))", describe_status(r->status, r->error),
                              r->http_status, r->attempts));
    }
    if (r->http_status != 200) {
      return fail(i, fmt::format("status BRG_OK but http {}; body: {}", r->http_status,
                                 excerpt(r->body, r->body_len)));
    }
    ChatAnswer answer;
    std::string why;
    if (!parse_chat_answer({r->body, r->body_len}, &answer, &why)) {
      return fail(i, fmt::format("{}; body: {}", why, excerpt(r->body, r->body_len)));
    }
    if (answer.content.find(echo_marker(i)) == std::string::npos) {
      return fail(i, fmt::format("answer does not echo \"{}\": \"{}\"", echo_marker(i),
                                 excerpt(answer.content.data(), answer.content.size())));
    }
    if (r->prompt_tokens != answer.prompt_tokens ||
        r->completion_tokens != answer.completion_tokens) {
      return fail(i, fmt::format("result tokens prompt={} completion={} but the body's usage says "
                                 "prompt={} completion={}",
                                 r->prompt_tokens, r->completion_tokens, answer.prompt_tokens,
                                 answer.completion_tokens));
    }
    ++report_.ok;
    if (r->prompt_tokens > 0) report_.tokens += r->prompt_tokens;
    if (r->completion_tokens > 0) report_.tokens += r->completion_tokens;
  }

  void fail(size_t i, const std::string& what) {
    ++report_.errors;
    problem(fmt::format("request {}: {}", i, what));
  }

  void problem(std::string line) {
    if (report_.problems.size() < kMaxProblems) {
      report_.problems.push_back(std::move(line));
    } else {
      ++report_.problems_dropped;
    }
  }

  static std::string excerpt(const char* p, size_t n) {
    constexpr size_t kMax = 160;
    if (p == nullptr) return "(null)";
    std::string s(p, n < kMax ? n : kMax);
    if (n > kMax) s += "...";
    return s;
  }

  const PhaseSpec& spec_;
  PhaseReport report_;
  EnginePtr engine_;
  std::vector<std::string> bodies_;
  std::vector<uint64_t> ids_;
  std::vector<bool> done_;
  size_t outstanding_ = 0;
};

}  // namespace

PhaseReport run_phase(const PhaseSpec& spec) { return Phase(spec).run(); }

}  // namespace barrage::cli
