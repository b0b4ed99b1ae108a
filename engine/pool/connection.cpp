// Connection state machine: connecting -> (handshaking) -> ready <-> busy,
// any state -> closed. Every failure closes the socket before the owner
// hears of it, so the owner never sees a half-dead connection. An HTTP/2
// connection stays `ready` and carries its requests as streams.
#include "pool/connection.hpp"

#include <cstring>

#include "barrage.h"
#include "net/proxy_config.hpp"
#include "net/tls_context.hpp"
#include "pool/handshake_gate.hpp"
#include "pool/origin_pool.hpp"

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
  h2_.reset();
  tls_.reset();
}

bool Connection::open(const SockAddr& addr, bool tls, const std::string& host, bool host_is_ip,
                      const std::string& origin_key, bool tunnel, int* err) noexcept {
  addr_ = addr;
  use_tls_ = tls;
  if (tunnel) {
    tunnel_.reset(new (std::nothrow) http::ConnectResponse(env_.proxy->redacted(), origin_->host, origin_->port));
    if (!tunnel_) {
      *err = ENOMEM;
      return false;
    }
  }
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
  if (h2_) h2_->fail_all(status, message);
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
  if (use_tls_ && tls_.alpn_h2()) {
    // Ready once the server's SETTINGS say how many streams it takes, so
    // the owner never queues more on this connection than it will run.
    if (!start_h2() || !h2_->settings_received()) return;
  } else if (use_tls_ && env_.http_version == 2) {
    fail(BRG_E_PROTOCOL, addr_.to_string() + " did not agree to HTTP/2 (ALPN) and BRG_OPT_HTTP_VERSION is 2");
    return;
  }
  state_ = State::ready;
  env_.events->on_ready(*this);
}

// ---- HTTP/2 ------------------------------------------------------------------

bool Connection::start_h2() noexcept {
  http::H2Options o;
  o.max_body_bytes = env_.limits.max_body_bytes;
  o.max_header_bytes = env_.limits.max_header_bytes;
  std::string why;
  h2_.reset(new (std::nothrow) http::H2Session);
  if (!h2_ || !h2_->init(this, o, &h2_out_, &why)) {
    fail(BRG_E_NOMEM, "HTTP/2 session for " + addr_.to_string() + ": " + (h2_ ? why : "out of memory"));
    return false;
  }
  pump_h2();
  return state_ != State::closed;
}

void Connection::pump_h2() noexcept {
  if (state_ == State::closed) return;
  bool ok = h2_->flush();
  if (!h2_out_.empty()) {
    if (tls_.write(h2_out_.data(), h2_out_.size()) != TlsSession::Status::done) {
      h2_out_.clear();
      fail(BRG_E_TLS, "TLS write failed: " + tls_.error());
      return;
    }
    h2_out_.clear();
    flush();
  }
  if (!ok) fail(BRG_E_PROTOCOL, "HTTP/2 with " + addr_.to_string() + ": " + h2_->error());
}

int32_t Connection::submit_stream(std::string_view wire, void* user, std::string* err) noexcept {
  if (!can_take_stream()) {
    *err = "HTTP/2 connection to " + addr_.to_string() + " cannot take another stream";
    return BRG_E_CLOSED;
  }
  return h2_->submit(wire, /*keep_body=*/true, user, err);
}

void Connection::send_pending() noexcept {
  if (h2_) pump_h2();
}

void Connection::cancel_stream(int32_t id) noexcept {
  if (!h2_ || state_ == State::closed) return;
  h2_->cancel(id);
  pump_h2();
}

void Connection::on_first_byte(void* user) noexcept { env_.events->on_stream_first_byte(*this, user); }

void Connection::on_data(void* user, http::H2Response& r, const char* p, size_t n) noexcept {
  env_.events->on_stream_data(*this, user, r, std::string_view(p, n));
}

void Connection::on_complete(void* user, http::H2Response& r) noexcept {
  ++responses_;
  env_.events->on_stream_response(*this, user, r);
}

void Connection::on_stream_error(void* user, int status, std::string message, bool unprocessed) noexcept {
  env_.events->on_stream_failure(*this, user, status, std::move(message), unprocessed);
}

void Connection::on_connected(int err) noexcept {
  if (state_ == State::closed) return;
  if (err != 0) {
    fail(BRG_E_CONNECT, "connect to " + (tunnel_ ? env_.proxy->redacted() + " at " : std::string()) +
                            addr_.to_string() + " failed: " + errno_text(err));
    return;
  }
  if (tunnel_) {
    // The CONNECT request holds the proxy credentials: it lives only in the
    // send buffers, which are cleared once sent, and is never logged.
    std::string req = http::write_connect(origin_->host, origin_->port, env_.proxy->proxy_authorization());
    if (req.empty()) {
      fail(BRG_E_INVALID, "cannot write a CONNECT request for " + origin_->host);
      return;
    }
    state_ = State::tunneling;
    out_.append(req);
    flush();
    return;
  }
  if (!use_tls_) {
    became_ready();
    return;
  }
  begin_tls();
}

void Connection::begin_tls() noexcept {
  state_ = State::handshaking;
  if (env_.handshakes && !env_.handshakes->enter(this)) return;  // queued: the gate starts it
  start_handshake();
}

bool Connection::read_tunnel_reply(const char* data, size_t len) noexcept {
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
  if (state_ == State::tunneling) {
    read_tunnel_reply(data, size_t(n));
    return;
  }
  if (!use_tls_) {
    consume(data, size_t(n));
    return;
  }
  if (gate_hook.linked()) {  // a TLS server never speaks first
    fail(BRG_E_PROTOCOL, addr_.to_string() + " sent data before the TLS handshake began");
    return;
  }
  tls_.feed(data, size_t(n));
  if (state_ == State::handshaking && !h2_) {  // with h2_: TLS is done, SETTINGS awaited
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
  if (state_ == State::ready && streams() == 0) tls_.release_buffers();
  flush();
}

bool Connection::consume(const char* data, size_t len) noexcept {
  if (h2_) {
    if (!h2_->feed(data, len)) {
      pump_h2();  // nghttp2's GOAWAY, best effort
      fail(BRG_E_PROTOCOL, "HTTP/2 with " + addr_.to_string() + ": " + h2_->error());
      return false;
    }
    pump_h2();
    if (state_ == State::handshaking && h2_->settings_received()) {
      state_ = State::ready;
      env_.events->on_ready(*this);
    }
    return state_ != State::closed;
  }
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
  if (h2_) {
    fail(BRG_E_IO, "connection closed by " + addr_.to_string() +
                       (streams() ? " with " + std::to_string(streams()) + " HTTP/2 streams open" : " while idle"));
    return;
  }
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
    case State::tunneling:
      tunnel_->finish();
      fail(BRG_E_CONNECT, tunnel_->error_message());
      break;
    default:
      fail(BRG_E_IO, "connection closed by " + addr_.to_string() + " while idle");
      break;
  }
}

}  // namespace barrage
