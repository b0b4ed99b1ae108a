// Transport state machine: connecting -> (tunneling) -> (handshaking) ->
// established, any state -> closed. Every failure closes the socket before
// the user hears of it, so the user never sees a half-dead transport.
#include "pool/transport.hpp"

#include <cstring>

#include "barrage.h"
#include "net/proxy_config.hpp"
#include "net/tls_context.hpp"
#include "pool/handshake_gate.hpp"

namespace barrage {

namespace {
constexpr size_t kScratch = 16 * 1024;

std::string errno_text(int err) { return std::string(std::strerror(err)) + " (" + std::to_string(err) + ")"; }
}  // namespace

// The socket and TLS state go here, not in close(): the pool frees closed
// connections at the end of a reactor turn, so a burst of closes (a mass
// deadline) never delays the results produced in the same turn.
Transport::~Transport() {
  if (env_.handshakes) env_.handshakes->forget(this);
  if (socket_) env_.backend->close(socket_, abort_);
  socket_ = nullptr;
  tls_.reset();
}

bool Transport::open(const SockAddr& addr, const Target& target, int* err) noexcept {
  addr_ = addr;
  try {
    target_ = target;
  } catch (...) {
    *err = ENOMEM;
    return false;
  }
  tls_on_ = target.tls;
  if (!ticket_key) ticket_key = &target_.session_key;
  if (target.tunnel) {
    tunnel_.reset(new (std::nothrow) http::ConnectResponse(env_.proxy->redacted(), target.host, target.port));
    if (!tunnel_) {
      *err = ENOMEM;
      return false;
    }
  }
  if (tls_on_) {
    std::string why;
    if (!tls_.init(*env_.tls, target.host, target.host_is_ip, target.session_key, &out_, &why)) {
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

const char* Transport::phase_text() const noexcept {
  switch (state_) {
    case State::handshaking: return "TLS handshake with ";
    case State::tunneling: return "CONNECT through the proxy at ";
    default: return "connecting to ";
  }
}

void Transport::write(std::string_view data) noexcept {
  if (state_ != State::established || deferred_status_) return;
  if (tls_on_) {
    if (tls_.write(data.data(), data.size()) != TlsSession::Status::done) {
      // Reported by the pool's flush: the caller of write() is not re-entered.
      deferred_status_ = BRG_E_TLS;
      try {
        deferred_message_ = "TLS write failed: " + tls_.error();
      } catch (...) {
      }
      return;
    }
  } else {
    try {
      out_.append(data);
    } catch (...) {
      deferred_status_ = BRG_E_NOMEM;
      return;
    }
  }
  flush();
}

bool Transport::report_deferred_failure() noexcept {
  if (!deferred_status_) return false;
  int status = deferred_status_;
  deferred_status_ = 0;
  fail(status, std::move(deferred_message_));
  return true;
}

void Transport::close(bool abort) noexcept {
  if (state_ == State::closed) return;
  // A last frame written just now (GOAWAY) goes to the kernel before the
  // orderly shutdown; the backend would otherwise cancel it with the socket.
  if (!abort && sending_) env_.backend->submit();
  state_ = State::closed;  // from here on every socket event is ignored
  abort_ = abort;
  sending_ = false;
  if (env_.handshakes) env_.handshakes->forget(this);
}

void Transport::fail(int status, std::string message) noexcept {
  if (state_ == State::closed) return;
  close(true);
  events_->on_transport_failed(status, std::move(message));
}

void Transport::flush() noexcept {
  if (sending_ || out_.empty() || state_ == State::closed) return;
  in_flight_.swap(out_);
  out_.clear();
  sending_ = true;
  env_.backend->send(socket_, in_flight_.data(), in_flight_.size());
}

void Transport::established() noexcept {
  if (env_.handshakes) {
    env_.handshakes->leave(this);
    if (gate_probe && offers_ticket()) env_.handshakes->probe_over(this, true);  // TLS 1.2: in the handshake
  }
  state_ = State::established;
  events_->on_established();
}

void Transport::on_connected(int err) noexcept {
  if (state_ == State::closed) return;
  if (err != 0) {
    fail(BRG_E_CONNECT, "connect to " + (tunnel_ ? env_.proxy->redacted() + " at " : std::string()) +
                            addr_.to_string() + " failed: " + errno_text(err));
    return;
  }
  if (tunnel_) {
    // The CONNECT request holds the proxy credentials: it lives only in the
    // send buffers, which are cleared once sent, and is never logged.
    std::string req = http::write_connect(target_.host, target_.port, env_.proxy->proxy_authorization());
    if (req.empty()) {
      fail(BRG_E_INVALID, "cannot write a CONNECT request for " + target_.host);
      return;
    }
    state_ = State::tunneling;
    out_.append(req);
    flush();
    return;
  }
  if (!tls_on_) {
    established();
    return;
  }
  begin_tls();
}

void Transport::begin_tls() noexcept {
  state_ = State::handshaking;
  if (env_.handshakes && !env_.handshakes->enter(this)) return;  // queued: the gate starts it
  start_handshake();
}

bool Transport::read_tunnel_reply(const char* data, size_t len) noexcept {
  http::ConnectResponse::State st = tunnel_->feed(std::string_view(data, len));
  if (st == http::ConnectResponse::State::need_more) return false;
  if (st == http::ConnectResponse::State::failed) {
    bool refused = tunnel_->error() == http::ConnectResponse::Error::refused ||
                   tunnel_->error() == http::ConnectResponse::Error::closed;
    fail(refused ? BRG_E_CONNECT : BRG_E_PROTOCOL, tunnel_->error_message());
    return false;
  }
  // A TLS server never speaks first, so nothing may follow the proxy's answer.
  if (!tunnel_->leftover().empty()) {
    fail(BRG_E_PROTOCOL, env_.proxy->redacted() + " sent bytes after its CONNECT answer, before the TLS handshake");
    return false;
  }
  tunnel_.reset();
  begin_tls();
  return state_ != State::closed;
}

bool Transport::may_resume() const noexcept { return env_.tls && env_.tls->resumes() && ticket_key; }

bool Transport::offers_ticket() const noexcept {
  return may_resume() && env_.tls->session_for(*ticket_key) != nullptr;
}

void Transport::start_handshake() noexcept {
  if (state_ != State::handshaking) return;
  if (tls_.handshake() == TlsSession::Status::error) {
    fail(BRG_E_TLS, "TLS handshake with " + addr_.to_string() + ": " + tls_.error());
    return;
  }
  flush();
}

void Transport::on_sent(ssize_t res) noexcept {
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

void Transport::on_received(const char* data, ssize_t n) noexcept {
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
  if (state_ == State::tunneling) {
    read_tunnel_reply(data, size_t(n));
    return;
  }
  if (!tls_on_) {
    events_->on_plaintext(data, size_t(n));
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
    established();
    if (state_ == State::closed) return;
  }
  // Decrypt everything this buffer holds: the backend recycles it after we return.
  std::string& scratch = *env_.scratch;
  if (scratch.size() < kScratch) scratch.resize(kScratch);
  while (tls_.has_input()) {
    size_t got = 0;
    TlsSession::Status st = tls_.read(scratch.data(), scratch.size(), &got);
    // A TLS 1.3 ticket comes after the handshake, before the server's first
    // answer; an answer with none before it means this server gives none.
    if (gate_probe && (offers_ticket() || st == TlsSession::Status::done))
      env_.handshakes->probe_over(this, offers_ticket());
    if (st == TlsSession::Status::done) {
      if (!events_->on_plaintext(scratch.data(), got) || state_ == State::closed) return;
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
  flush();
}

void Transport::handle_eof() noexcept {
  switch (state_) {
    case State::established:
      events_->on_peer_closed();
      break;
    case State::handshaking:
      fail(BRG_E_TLS, "connection closed by " + addr_.to_string() + " during the TLS handshake");
      break;
    case State::tunneling:
      tunnel_->finish();
      fail(BRG_E_CONNECT, tunnel_->error_message());
      break;
    default:
      fail(BRG_E_IO, "connection closed by " + addr_.to_string() + " while connecting");
      break;
  }
}

}  // namespace barrage
