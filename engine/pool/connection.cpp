// Connection state machine: connecting -> (handshaking) -> ready <-> busy,
// any state -> closed. Every failure closes the socket before the owner
// hears of it, so the owner never sees a half-dead connection.
#include "pool/connection.hpp"

#include <cstring>

#include "barrage.h"
#include "net/tls_context.hpp"
#include "pool/handshake_gate.hpp"

namespace barrage {

namespace {
constexpr size_t kScratch = 16 * 1024;

std::string errno_text(int err) {
  return std::string(std::strerror(err)) + " (" + std::to_string(err) + ")";
}
}  // namespace

Connection::Connection(const ConnectionEnv& env, OriginPool* origin) noexcept
    : env_(env), origin_(origin), parser_(env.limits) {}

// The socket and TLS state go here, not in close(): the owner frees closed
// connections at the end of a reactor turn, so a burst of closes (a mass
// deadline) never delays the results produced in the same turn.
Connection::~Connection() {
  if (socket_) env_.backend->close(socket_, abort_);
  socket_ = nullptr;
  tls_.reset();
}

bool Connection::open(const SockAddr& addr, bool tls, const std::string& host, bool host_is_ip,
                      const std::string& origin_key, int* err) noexcept {
  addr_ = addr;
  use_tls_ = tls;
  if (tls) {
    std::string why;
    if (!tls_.init(*env_.tls, host, host_is_ip, origin_key, &out_, &why)) {
      *err = ENOMEM;
      return false;
    }
  }
  socket_ = env_.backend->connect(addr.get(), addr.len, this, err);
  if (!socket_) {
    tls_.reset();
    return false;
  }
  state_ = State::connecting;
  return true;
}

void Connection::send_request(std::string_view wire, bool head_request, bool watch_body) noexcept {
  parser_.reset(head_request);
  watch_body_ = watch_body;
  state_ = State::busy;
  if (use_tls_) {
    if (tls_.write(wire.data(), wire.size()) != TlsSession::Status::done) {
      fail(BRG_E_TLS, "TLS write failed: " + tls_.error());
      return;
    }
  } else {
    out_.append(wire);
  }
  flush();
}

void Connection::close(bool abort) noexcept {
  if (state_ == State::closed) return;
  state_ = State::closed;  // from here on every socket event is ignored
  abort_ = abort;
  sending_ = false;
  if (env_.handshakes) env_.handshakes->leave(this);
}

void Connection::fail(int status, std::string message) noexcept {
  if (state_ == State::closed) return;
  close(true);
  env_.events->on_failure(*this, status, std::move(message));
}

void Connection::flush() noexcept {
  if (sending_ || out_.empty() || state_ == State::closed) return;
  in_flight_.swap(out_);
  out_.clear();
  sending_ = true;
  env_.backend->send(socket_, in_flight_.data(), in_flight_.size());
}

void Connection::became_ready() noexcept {
  if (env_.handshakes) env_.handshakes->leave(this);
  state_ = State::ready;
  env_.events->on_ready(*this);
}

void Connection::on_connected(int err) noexcept {
  if (state_ == State::closed) return;
  if (err != 0) {
    fail(BRG_E_CONNECT, "connect to " + addr_.to_string() + " failed: " + errno_text(err));
    return;
  }
  if (!use_tls_) {
    became_ready();
    return;
  }
  state_ = State::handshaking;
  if (env_.handshakes && !env_.handshakes->enter(this)) return;  // queued: the gate starts it
  start_handshake();
}

void Connection::start_handshake() noexcept {
  if (state_ != State::handshaking) return;
  if (tls_.handshake() == TlsSession::Status::error) {
    fail(BRG_E_TLS, "TLS handshake with " + addr_.to_string() + ": " + tls_.error());
    return;
  }
  flush();
}

void Connection::on_sent(ssize_t res) noexcept {
  if (state_ == State::closed) return;
  sending_ = false;
  if (res < 0) {
    fail(BRG_E_IO, "send to " + addr_.to_string() + " failed: " + errno_text(int(-res)));
    return;
  }
  env_.bytes_sent->add(uint64_t(res));
  in_flight_.clear();
  flush();
}

void Connection::on_received(const char* data, ssize_t n) noexcept {
  if (state_ == State::closed) return;
  if (n < 0) {
    fail(BRG_E_IO, "receive from " + addr_.to_string() + " failed: " + errno_text(int(-n)));
    return;
  }
  if (n == 0) {
    handle_eof();
    return;
  }
  env_.bytes_received->add(uint64_t(n));
  if (!use_tls_) {
    consume(data, size_t(n));
    return;
  }
  if (gate_hook.linked()) {  // a TLS server never speaks first
    fail(BRG_E_PROTOCOL, addr_.to_string() + " sent data before the TLS handshake began");
    return;
  }
  tls_.feed(data, size_t(n));
  if (state_ == State::handshaking) {
    TlsSession::Status st = tls_.handshake();
    if (st == TlsSession::Status::error || st == TlsSession::Status::closed) {
      fail(BRG_E_TLS, "TLS handshake with " + addr_.to_string() + ": " +
                          (st == TlsSession::Status::closed ? "closed by peer" : tls_.error()));
      return;
    }
    flush();
    if (st == TlsSession::Status::want_read) return;
    became_ready();
    if (state_ == State::closed) return;
  }
  // Decrypt everything this buffer holds: the backend recycles it after we return.
  std::string& scratch = *env_.scratch;
  if (scratch.size() < kScratch) scratch.resize(kScratch);
  while (tls_.has_input()) {
    size_t got = 0;
    TlsSession::Status st = tls_.read(scratch.data(), scratch.size(), &got);
    if (st == TlsSession::Status::done) {
      if (!consume(scratch.data(), got)) return;
      continue;
    }
    if (st == TlsSession::Status::want_read) break;
    if (st == TlsSession::Status::closed) {
      handle_eof();
      return;
    }
    fail(BRG_E_TLS, "TLS error from " + addr_.to_string() + ": " + tls_.error());
    return;
  }
  if (state_ == State::ready) tls_.release_buffers();
  flush();
}

bool Connection::consume(const char* data, size_t len) noexcept {
  if (state_ != State::busy) {
    fail(BRG_E_PROTOCOL, "unexpected data from " + addr_.to_string() + " with no request outstanding");
    return false;
  }
  bool was_started = parser_.started();
  size_t body_before = parser_.body().size();
  size_t used = 0;
  http::ResponseParser::State st = parser_.feed(data, len, &used);
  if (!was_started && parser_.started()) env_.events->on_first_byte(*this);
  if (!report_body(body_before)) return false;
  if (st == http::ResponseParser::State::error) {
    fail(parser_.error() == http::ResponseParser::Error::too_large ? BRG_E_TOO_LARGE : BRG_E_PROTOCOL,
         parser_.error_message());
    return false;
  }
  if (st != http::ResponseParser::State::complete) return true;
  ++responses_;
  // Bytes past the response mean the peer is out of step: answer, then drop.
  reusable_ = parser_.keep_alive() && used == len;
  state_ = State::ready;
  env_.events->on_response(*this);
  return state_ != State::closed && used == len;
}

bool Connection::report_body(size_t before) noexcept {
  if (!watch_body_ || parser_.body().size() == before) return true;
  env_.events->on_body(*this);
  return state_ != State::closed;
}

void Connection::handle_eof() noexcept {
  if (state_ == State::busy && parser_.started() &&
      parser_.finish() == http::ResponseParser::State::complete) {
    ++responses_;
    reusable_ = false;
    state_ = State::ready;
    env_.events->on_response(*this);
    return;
  }
  switch (state_) {
    case State::busy:
      // Cut off mid-answer: a transport failure like a reset, so retryable.
      if (parser_.started())
        fail(BRG_E_IO, "connection closed by " + addr_.to_string() + " before the end of the response");
      else
        fail(BRG_E_IO, "connection closed by " + addr_.to_string() + " before any response byte");
      break;
    case State::handshaking:
      fail(BRG_E_TLS, "connection closed by " + addr_.to_string() + " during the TLS handshake");
      break;
    default:
      fail(BRG_E_IO, "connection closed by " + addr_.to_string() + " while idle");
      break;
  }
}

}  // namespace barrage
