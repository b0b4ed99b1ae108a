// Mailbox: the queues, the eventfd and the counters shared across threads.
#include "core/mailbox.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "barrage.h"
#include "core/request.hpp"

namespace barrage {

std::unique_ptr<Mailbox> Mailbox::create(Backend& backend, std::string* err) noexcept {
  std::unique_ptr<Mailbox> m(new (std::nothrow) Mailbox(backend));
  if (!m) {
    *err = "out of memory";
    return nullptr;
  }
  m->results_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (m->results_fd_ < 0) {
    *err = std::string("eventfd: ") + std::strerror(errno);
    return nullptr;
  }
  return m;
}

Mailbox::~Mailbox() {
  while (MpscNode* n = submissions_.pop()) delete static_cast<Request*>(n);
  while (MpscNode* n = commands_.pop()) delete static_cast<Command*>(n);
  while (MpscNode* n = results_.pop()) store_->destroy(static_cast<Outcome*>(n));
  if (results_fd_ >= 0) ::close(results_fd_);
}

bool Mailbox::reserve_pending(int64_t max) noexcept {
  if (pending_.fetch_add(1, std::memory_order_relaxed) < max) return true;
  pending_.fetch_sub(1, std::memory_order_relaxed);
  return false;
}

void Mailbox::submit(Request* r) noexcept {
  submissions_.push(r);
  if (sleeping_.load(std::memory_order_seq_cst)) backend_.wake();
}

int Mailbox::command(Command::Kind kind, uint64_t id, int64_t deadline_ms) noexcept {
  auto* c = new (std::nothrow) Command;
  if (!c) return BRG_E_NOMEM;
  c->kind = kind;
  c->id = id;
  c->deadline_ms = deadline_ms;
  commands_.push(c);
  backend_.wake();
  return 0;
}

void Mailbox::stop() noexcept {
  stopping_.store(true, std::memory_order_seq_cst);
  backend_.wake();
}

Request* Mailbox::pop_submission() noexcept { return static_cast<Request*>(submissions_.pop()); }
Command* Mailbox::pop_command() noexcept { return static_cast<Command*>(commands_.pop()); }

void Mailbox::push(Outcome* o) noexcept {
  results_.push(o);
  results_waiting_.fetch_add(1, std::memory_order_relaxed);
  unpublished_ = true;
}

void Mailbox::signal() noexcept {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(results_fd_, &one, sizeof one);
}

void Mailbox::publish() noexcept {
  if (!unpublished_) return;
  unpublished_ = false;
  signal();
}

void Mailbox::deliver_now(Outcome* o) noexcept {
  results_.push(o);
  results_waiting_.fetch_add(1, std::memory_order_relaxed);
  signal();
}

void Mailbox::begin_take() noexcept {
  uint64_t v;
  [[maybe_unused]] ssize_t rd = ::read(results_fd_, &v, sizeof v);
}

void Mailbox::end_take(size_t taken, size_t finals) noexcept {
  results_waiting_.fetch_sub(taken, std::memory_order_relaxed);
  pending_.fetch_sub(int64_t(finals), std::memory_order_relaxed);
  if (results_waiting_.load(std::memory_order_relaxed) > 0) signal();  // more than the caller took
}

bool Mailbox::going_to_sleep() noexcept {
  sleeping_.store(true, std::memory_order_seq_cst);
  return submissions_.empty() && commands_.empty() && !stopping_.load(std::memory_order_seq_cst);
}

}  // namespace barrage
