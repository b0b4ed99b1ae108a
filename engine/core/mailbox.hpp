// The one meeting point of the threads: requests and commands in from any
// thread, outcomes out to any thread, the results eventfd, and the counters
// both sides touch. Everything else in the engine belongs to the reactor
// thread; this is the only engine file with atomics.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/outcome.hpp"
#include "loop/backend.hpp"
#include "loop/mpsc_queue.hpp"

namespace barrage {

struct Request;

struct Command : MpscNode {
  enum class Kind { cancel, cancel_group, group_deadline } kind = Kind::cancel;
  uint64_t id = 0;  // request or group
  int64_t deadline_ms = 0;
};

class Mailbox {
 public:
  // nullptr and *err when the eventfd cannot be made.
  static std::unique_ptr<Mailbox> create(Backend& backend, std::string* err) noexcept;
  ~Mailbox();  // frees what is still queued (outcomes through their store)
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  // ---- any thread ----
  uint64_t next_id() noexcept { return next_id_.fetch_add(1, std::memory_order_relaxed); }
  bool issued(uint64_t id) const noexcept { return id != 0 && id < next_id_.load(std::memory_order_relaxed); }
  // A place among the pending requests (submitted, final outcome not yet
  // taken); false when `max` are pending.
  bool reserve_pending(int64_t max) noexcept;
  void release_pending() noexcept { pending_.fetch_sub(1, std::memory_order_relaxed); }
  void submit(Request* r) noexcept;
  int command(Command::Kind kind, uint64_t id, int64_t deadline_ms) noexcept;  // 0 or BRG_E_NOMEM
  // An outcome made on a submitting thread (a cached answer): signalled at once.
  void deliver_now(Outcome* o) noexcept;
  // Up to max outcomes, oldest first, each handed to each(outcome, index);
  // one eventfd read per call, whatever max is.
  template <class F>
  size_t take(size_t max, F&& each) noexcept {
    if (max == 0) return 0;
    begin_take();
    size_t n = 0, finals = 0;
    while (n < max) {
      MpscNode* node = results_.pop();
      if (!node) break;
      auto* o = static_cast<Outcome*>(node);
      if (o->kind != Outcome::partial) ++finals;
      each(o, n++);
    }
    end_take(n, finals);
    return n;
  }
  size_t take(Outcome** out, size_t max) noexcept {
    return out ? take(max, [out](Outcome* o, size_t i) { out[i] = o; }) : 0;
  }
  uint64_t waiting() const noexcept { return results_waiting_.load(std::memory_order_relaxed); }
  int results_fd() const noexcept { return results_fd_; }
  bool threaded() const noexcept { return threaded_.load(std::memory_order_acquire); }
  void set_threaded(bool on) noexcept { threaded_.store(on, std::memory_order_release); }
  bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }
  void stop() noexcept;
  void count_cache_hit() noexcept { cache_hits_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t cache_hits() const noexcept { return cache_hits_.load(std::memory_order_relaxed); }
  bool inputs_pending() const noexcept { return !submissions_.empty() || !commands_.empty(); }

  // ---- reactor thread ----
  Request* pop_submission() noexcept;
  Command* pop_command() noexcept;
  void push(Outcome* o) noexcept;  // signalled by publish()
  void publish() noexcept;         // once per turn, if anything was pushed
  bool unpublished() const noexcept { return unpublished_; }
  // Around the backend's wait in threaded mode: a submitter wakes the loop
  // only while it sleeps. false: do not sleep, there is work.
  bool going_to_sleep() noexcept;
  void woke() noexcept { sleeping_.store(false, std::memory_order_relaxed); }

  void set_store(OutcomeStore* store) noexcept { store_ = store; }

 private:
  explicit Mailbox(Backend& b) noexcept : backend_(b) {}
  void signal() noexcept;
  void begin_take() noexcept;
  void end_take(size_t taken, size_t finals) noexcept;

  Backend& backend_;
  OutcomeStore* store_ = nullptr;
  int results_fd_ = -1;
  MpscQueue submissions_, commands_, results_;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<int64_t> pending_{0};
  std::atomic<uint64_t> results_waiting_{0};
  std::atomic<uint64_t> cache_hits_{0};
  std::atomic<bool> threaded_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> sleeping_{false};
  bool unpublished_ = false;
};

}  // namespace barrage
