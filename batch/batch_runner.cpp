// The second pass of a batch: read a line, submit it, poll, write whatever
// finished, report progress. Memory stays bounded because lines are read
// only while the engine holds fewer than about twice the requests it can
// run at once, and (ORDERED) while the reorder window has room.
#include "batch/batch_runner.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <vector>

#include "batch/batch_id.hpp"
#include "batch/batch_plan.hpp"
#include "batch/output_file.hpp"
#include "batch/output_line.hpp"
#include "batch/reorder_buffer.hpp"

namespace barrage {
namespace {

constexpr uint64_t kTickNs = 100'000'000;  // progress about every 100 ms
constexpr size_t kMinOutstanding = 256;    // before the engine's real concurrency is seen
constexpr size_t kTakeBatch = 256;

struct ResultDeleter {
  void operator()(brg_result* r) const noexcept { brg_result_free(r); }
};
using ResultPtr = std::unique_ptr<brg_result, ResultDeleter>;

// The answer's x-request-id; nullptr when it had none ("").
const char* request_id_of(const brg_result& r) noexcept {
  if (r.size >= offsetof(brg_result, request_id) + sizeof r.request_id && r.request_id && *r.request_id)
    return r.request_id;
  return nullptr;
}

uint64_t monotonic_ns() {
  return uint64_t(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

enum class Outcome : uint8_t { ok, failed, invalid };

// One formatted output line and what it adds to the progress figures,
// counted when it is written, so `done` always matches the file.
struct Finished {
  std::string line;
  Outcome outcome = Outcome::ok;
  bool cached = false;
  int64_t prompt_tokens = -1, completion_tokens = -1;
  double cost_usd = -1;
};

struct InFlight {
  uint64_t seq = 0;
  uint64_t line = 0;
  std::string custom_id;
  std::string model;
};

class BatchRun {
 public:
  BatchRun(brg_engine* engine, const BatchSettings& s, brg_batch_progress_fn fn, void* user)
      : engine_(engine),
        s_(s),
        fn_(fn),
        user_(user),
        ordered_(s.flags & BRG_BATCH_ORDERED),
        parser_(s.endpoint),
        selector_(s, resume_),
        reorder_(ordered_ ? s.reorder_window : 1) {
    progress_.size = sizeof progress_;
    for (auto& [name, value] : s_.headers) headers_.push_back({name.c_str(), value.c_str()});
  }

  int run(brg_batch_progress* final_out, std::string* err);

 private:
  int prepare(std::string* err);
  void start_lines();
  void start(const Line& line);
  void finish_invalid(uint64_t seq, uint64_t line, std::string_view code, const std::string& message);
  void on_result(ResultPtr r);
  void take_results();
  void emit(uint64_t seq, Finished f);
  void write(const Finished& f);
  void fail(int status, std::string message);
  void cancel_and_drain();
  void update_capacity();
  int report();

  brg_engine* engine_;
  const BatchSettings& s_;
  brg_batch_progress_fn fn_;
  void* user_;
  bool ordered_;
  uint64_t start_ns_ = monotonic_ns();

  ResumeState resume_;
  InputLineParser parser_;
  LineSelector selector_;
  LineReader reader_;
  OutputFile out_;
  OutputLineFormatter formatter_;
  BatchIdSource ids_;
  std::vector<brg_header> headers_;
  ReorderBuffer<Finished> reorder_;
  Finished popped_;

  InputLine in_;
  std::string held_text_;  // a line the engine had no room for, retried first
  Line held_;
  bool holding_ = false;

  std::unordered_map<uint64_t, InFlight> in_flight_;  // by engine request id
  uint64_t next_seq_ = 0;
  size_t capacity_ = kMinOutstanding;
  size_t full_cap_ = SIZE_MAX;  // lowered when the engine reports BRG_E_FULL
  bool input_done_ = false;
  bool stopping_ = false;  // progress said 1
  bool aborted_ = false;   // progress said 2
  int fatal_ = 0;
  std::string fatal_msg_;
  brg_batch_progress progress_{};
};

int BatchRun::prepare(std::string* err) {
  bool dry = s_.flags & BRG_BATCH_DRY_RUN;
  if (!dry && brg_backend_fd(engine_) < 0)
    return *err = "brg_batch_run needs an engine in inline mode (this one was started with brg_start)",
           BRG_E_INVALID;
  if ((s_.flags & BRG_BATCH_RESUME) && !s_.output_path.empty()) {
    *err = scan_output(s_.output_path, /*truncate=*/!dry, &resume_);
    if (!err->empty()) return BRG_E_INVALID;
  }
  BatchPlan plan;
  int rc = plan_batch(s_, selector_, parser_, &plan, err);
  if (rc != 0) return rc;
  progress_.total = plan.total;
  progress_.skipped = plan.skipped;
  if (dry) {
    progress_.invalid = plan.invalid;  // found, since nothing is written
    return 0;
  }
  *err = out_.open(s_.output_path);
  if (!err->empty()) return BRG_E_INVALID;
  *err = reader_.open(s_.input_path);
  if (!err->empty()) return BRG_E_INVALID;
  return 0;
}

int BatchRun::run(brg_batch_progress* final_out, std::string* err) {
  int rc = prepare(err);
  if (rc != 0) return rc;
  if (!(s_.flags & BRG_BATCH_DRY_RUN)) {
    uint64_t next_tick = start_ns_ + kTickNs;
    for (;;) {
      if (!stopping_ && !fatal_) start_lines();
      if (fatal_) break;
      if (in_flight_.empty() && (input_done_ || stopping_)) break;
      uint64_t now = monotonic_ns();
      int timeout = next_tick > now ? int((next_tick - now + 999'999) / 1'000'000) : 0;
      int n = brg_poll(engine_, timeout);
      if (n < 0) {
        fail(n, "the engine failed: " + status_error_code(n));
        break;
      }
      take_results();
      if (fatal_) break;
      update_capacity();
      now = monotonic_ns();
      if (now >= next_tick) {
        next_tick = now + kTickNs;
        int verdict = report();
        if (verdict == 1) stopping_ = true;
        if (verdict != 0 && verdict != 1) {
          aborted_ = true;
          break;
        }
      }
    }
    if (aborted_ || fatal_) cancel_and_drain();
  }
  report();
  if (final_out) *final_out = progress_;
  if (fatal_) return *err = fatal_msg_, fatal_;
  if (aborted_) return *err = "the batch was aborted by its progress callback", BRG_E_CANCELLED;
  return 0;
}

void BatchRun::start_lines() {
  while (!input_done_) {
    if (in_flight_.size() >= std::min(capacity_, full_cap_)) return;
    if (ordered_ && !reorder_.can_start(next_seq_)) return;
    Line line;
    if (holding_) {
      line = held_;
      holding_ = false;
    } else {
      int rc = reader_.next(&line);
      if (rc < 0) return fail(BRG_E_INVALID, "cannot read " + s_.input_path + ": " + std::strerror(-rc));
      if (rc == 0) {
        input_done_ = true;
        return;
      }
      if (!selector_.in_shard(line)) continue;
    }
    start(line);
    if (holding_ || fatal_) return;
  }
}

void BatchRun::start(const Line& line) {
  parser_.parse(line.text, line.number, &in_);
  switch (selector_.decide(line, in_)) {
    case LineAction::ignore:
    case LineAction::skip: return;
    case LineAction::invalid: return finish_invalid(next_seq_++, line.number, "invalid_request", in_.error);
    case LineAction::run: break;
  }
  brg_request req{};
  req.size = sizeof req;
  req.method = "POST";
  req.url = in_.url.c_str();
  req.headers = headers_.data();
  req.n_headers = uint32_t(headers_.size());
  req.body = in_.body.data();
  req.body_len = in_.body.size();
  req.deadline_ms = s_.deadline_ms;
  req.max_retries = s_.max_retries;
  uint64_t id = 0;
  int rc = brg_submit(engine_, &req, &id);
  if (rc == BRG_E_FULL) {
    // Keep a copy (with parse padding): the reader's buffer moves on.
    full_cap_ = std::max<size_t>(1, in_flight_.size());
    if (line.text.data() != held_text_.data()) {
      held_text_.reserve(line.text.size() + kLinePadding);
      held_text_.assign(line.text);
      held_ = line;
      held_.text = held_text_;
    }
    holding_ = true;
    return;
  }
  uint64_t seq = next_seq_++;
  if (rc != 0) {
    // The engine refused the line itself (an http:// url without
    // BRG_OPT_ALLOW_HTTP, a header it will not send): report, go on.
    bool line_fault = rc == BRG_E_INVALID;
    return finish_invalid(seq, line.number, line_fault ? "invalid_request" : status_error_code(rc),
                          "line " + std::to_string(line.number) + ": " + brg_last_error());
  }
  in_flight_.emplace(id, InFlight{seq, line.number, in_.custom_id, in_.model});
}

void BatchRun::finish_invalid(uint64_t seq, uint64_t line, std::string_view code, const std::string& message) {
  std::string id = ids_.next();
  OutputRecord rec;
  rec.id = id;
  rec.has_custom_id = in_.has_custom_id;
  rec.custom_id = in_.custom_id;
  rec.error_code = code;
  rec.error_message = message;
  rec.line = line;
  rec.model = in_.model;
  rec.finished_unix_ms = unix_now_ms();
  Finished f;
  f.line = formatter_.format(rec);
  f.outcome = Outcome::invalid;
  emit(seq, std::move(f));
}

void BatchRun::take_results() {
  brg_result* batch[kTakeBatch];
  size_t n;
  while ((n = brg_results(engine_, batch, kTakeBatch)) > 0)
    for (size_t i = 0; i < n; ++i) on_result(ResultPtr(batch[i]));
}

void BatchRun::on_result(ResultPtr r) {
  auto it = in_flight_.find(r->id);
  if (it == in_flight_.end()) return;  // not the batch's
  InFlight f = std::move(it->second);
  in_flight_.erase(it);
  if (aborted_ || fatal_) return;  // cancelled work is not written: a resume runs it again

  std::string id = ids_.next();
  std::string code;
  OutputRecord rec;
  rec.id = id;
  rec.has_custom_id = true;
  rec.custom_id = f.custom_id;
  if (r->status == BRG_OK || r->status == BRG_E_HTTP) {
    rec.has_response = true;
    rec.status_code = r->http_status;
    const char* request_id = request_id_of(*r);
    rec.has_request_id = request_id != nullptr;
    if (request_id) rec.request_id = request_id;
    rec.body = std::string_view(r->body ? r->body : "", r->body ? r->body_len : 0);
  }
  if (r->status != BRG_OK) {
    code = r->status == BRG_E_HTTP ? "http_error" : status_error_code(r->status);
    rec.error_code = code;
    rec.error_message = r->error ? r->error : "";
  }
  rec.line = f.line;
  rec.attempts = r->attempts;
  rec.cached = r->flags & BRG_RES_CACHED;
  rec.latency_us = r->total_us;
  rec.ttfb_us = r->ttfb_us;
  rec.prompt_tokens = r->prompt_tokens;
  rec.completion_tokens = r->completion_tokens;
  rec.model = f.model;
  rec.cost_usd = s_.prices.cost(f.model, r->prompt_tokens, r->completion_tokens);
  rec.finished_unix_ms = unix_now_ms();

  Finished fin;
  fin.line = formatter_.format(rec);
  fin.outcome = r->status == BRG_OK ? Outcome::ok : Outcome::failed;
  fin.cached = rec.cached;
  fin.prompt_tokens = r->prompt_tokens;
  fin.completion_tokens = r->completion_tokens;
  fin.cost_usd = rec.cost_usd;
  emit(f.seq, std::move(fin));
}

void BatchRun::emit(uint64_t seq, Finished f) {
  if (!ordered_) return write(f);
  reorder_.put(seq, std::move(f));
  while (!fatal_ && reorder_.pop(&popped_)) write(popped_);
}

void BatchRun::write(const Finished& f) {
  if (fatal_) return;
  int rc = out_.write_line(f.line);
  if (rc != 0) return fail(BRG_E_INVALID, "cannot write " + s_.output_path + ": " + std::strerror(-rc));
  brg_batch_progress& p = progress_;
  ++p.done;
  switch (f.outcome) {
    case Outcome::ok: ++p.ok; break;
    case Outcome::failed: ++p.failed; break;
    case Outcome::invalid: ++p.invalid; break;
  }
  if (f.cached) ++p.cached;
  if (f.prompt_tokens > 0) p.prompt_tokens += f.prompt_tokens;
  if (f.completion_tokens > 0) p.completion_tokens += f.completion_tokens;
  if (f.cost_usd > 0) p.cost_usd += f.cost_usd;
}

void BatchRun::fail(int status, std::string message) {
  if (fatal_) return;
  fatal_ = status;
  fatal_msg_ = std::move(message);
}

void BatchRun::cancel_and_drain() {
  for (auto& [id, f] : in_flight_) brg_cancel(engine_, id);
  while (!in_flight_.empty()) {
    if (brg_poll(engine_, 100) < 0) break;
    take_results();
  }
}

// The engine's in-flight limit is not visible through its API, so the
// runner watches how many of its requests actually hold a slot and keeps
// about twice that many submitted: enough to refill every slot at once,
// never the whole file.
void BatchRun::update_capacity() {
  struct brg_stats st {};
  st.size = sizeof st;
  brg_stats(engine_, &st);
  capacity_ = std::max(capacity_, size_t(2 * st.in_flight));
}

int BatchRun::report() {
  progress_.in_flight = in_flight_.size();
  progress_.elapsed_s = double(monotonic_ns() - start_ns_) / 1e9;
  return fn_ ? fn_(&progress_, user_) : 0;
}

}  // namespace

int run_batch(brg_engine* engine, const BatchSettings& settings, brg_batch_progress_fn progress, void* user,
              brg_batch_progress* final_out, std::string* err) {
  BatchRun run(engine, settings, progress, user);
  return run.run(final_out, err);
}

}  // namespace barrage
