// One keep-alive HTTP/1.1 connection: socket, optional TLS, response
// parser. It moves bytes and reports events; which request it serves and
// what happens on failure is decided by its owner (the engine).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "http/connect_tunnel.hpp"
#include "http/h2_session.hpp"
#include "http/response_parser.hpp"
#include "loop/backend.hpp"
#include "loop/counter.hpp"
#include "loop/intrusive_list.hpp"
#include "loop/timer_wheel.hpp"
#include "net/resolver.hpp"
#include "net/tls_session.hpp"

namespace barrage {

class Connection;
class TlsContext;
class HandshakeGate;
struct ProxyConfig;
struct OriginPool;

class ConnectionEvents {
 public:
  // Connected (and TLS established): ready for send_request().
  virtual void on_ready(Connection& c) noexcept = 0;
  // The first byte of the current response arrived.
  virtual void on_first_byte(Connection& c) noexcept = 0;
  // More body of the current response arrived (only for requests sent with
  // watch_body); c.response().body() holds all of it so far.
  virtual void on_body(Connection& c) noexcept = 0;
  // The current response is complete; c.response() holds it.
  virtual void on_response(Connection& c) noexcept = 0;
  // The connection failed and is already closed. status is a brg_status.
  // On an HTTP/2 connection every open stream was reported first.
  virtual void on_failure(Connection& c, int status, std::string message) noexcept = 0;

  // HTTP/2 streams (the stream's user pointer as given to submit_stream).
  virtual void on_stream_first_byte(Connection& c, void* user) noexcept = 0;
  virtual void on_stream_data(Connection& c, void* user, http::H2Response& r, std::string_view piece) noexcept = 0;
  virtual void on_stream_response(Connection& c, void* user, http::H2Response& r) noexcept = 0;
  // unprocessed: the server did not act on it; retrying elsewhere is free.
  virtual void on_stream_failure(Connection& c, void* user, int status, std::string message,
                                 bool unprocessed) noexcept = 0;

 protected:
  ~ConnectionEvents() = default;
};

// Engine-wide pieces every connection borrows.
struct ConnectionEnv {
  Backend* backend = nullptr;
  TlsContext* tls = nullptr;  // nullptr: plain http (tests on loopback only)
  ConnectionEvents* events = nullptr;
  HandshakeGate* handshakes = nullptr;  // nullptr: no cap on concurrent handshakes
  http::ResponseLimits limits;
  int http_version = 0;  // as BRG_OPT_HTTP_VERSION: 2 fails a server that does not pick h2
  const ProxyConfig* proxy = nullptr;  // for connections opened with `tunnel`
  std::string* scratch = nullptr;  // decrypted-bytes buffer, shared by all connections
  Counter* bytes_sent = nullptr;
  Counter* bytes_received = nullptr;
};

class Connection final : public SocketHandler, private http::H2Events {
 public:
  // tunneling: TCP to the proxy is up, its answer to CONNECT is awaited.
  enum class State { connecting, tunneling, handshaking, ready, busy, closed };

  Connection(const ConnectionEnv& env, OriginPool* origin) noexcept;
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Starts connecting to addr (the proxy's when tunnel: CONNECT to the
  // origin's host and port, then TLS as if direct). false with *err = errno
  // when no socket could be made.
  bool open(const SockAddr& addr, bool tls, const std::string& host, bool host_is_ip,
            const std::string& origin_key, bool tunnel, int* err) noexcept;
  // Sends one serialized request (must outlive the response); state ready -> busy.
  // watch_body: report body progress with on_body (streamed answers).
  void send_request(std::string_view wire, bool head_request, bool watch_body = false) noexcept;
  // No event is reported after this; the socket is released (RST when
  // abort) when the connection is destroyed.
  void close(bool abort) noexcept;

  // HTTP/2 (ALPN chose h2; valid once ready). Many requests at once, each a
  // stream: submit_stream returns its id or a negative brg_status (*err).
  bool multiplexed() const noexcept { return h2_ != nullptr; }
  bool can_take_stream() const noexcept { return h2_ && state_ == State::ready && h2_->can_submit(); }
  // Every DATA chunk is reported (on_stream_data); nothing is sent until
  // send_pending(), so the owner can record the id before any event.
  int32_t submit_stream(std::string_view wire, void* user, std::string* err) noexcept;
  void send_pending() noexcept;
  void cancel_stream(int32_t id) noexcept;  // RST_STREAM; no event for it afterwards
  size_t streams() const noexcept { return h2_ ? h2_->active_streams() : 0; }
  uint32_t stream_limit() const noexcept { return h2_ ? h2_->max_concurrent_streams() : 1; }
  bool going_away() const noexcept { return h2_ && h2_->going_away(); }

  State state() const noexcept { return state_; }
  // Not yet able to carry a request: connecting, tunneling or handshaking.
  bool establishing() const noexcept {
    return state_ == State::connecting || state_ == State::tunneling || state_ == State::handshaking;
  }
  bool busy() const noexcept { return state_ == State::busy; }
  bool reused() const noexcept { return responses_ > 0; }  // served a response before
  // After on_response: may the connection carry another request.
  bool reusable() const noexcept { return reusable_ && state_ == State::ready; }
  bool tls_resumed() const noexcept { return tls_.resumed(); }
  // Any byte of the current response arrived (decides stale keep-alive retry).
  bool response_started() const noexcept { return parser_.started(); }
  http::ResponseParser& response() noexcept { return parser_; }
  OriginPool* origin() const noexcept { return origin_; }
  ConnectionEvents* events() const noexcept { return env_.events; }
  const SockAddr& address() const noexcept { return addr_; }

  // Owner's bookkeeping, opaque to the connection.
  void* owner_data = nullptr;
  size_t addr_index = 0;
  bool opening = true;  // counted among its origin's connections being opened
  Timer timer;                 // connect timeout or idle timeout, armed by the owner
  ListHook<Connection> hook;   // idle list of the origin

  // HandshakeGate's bookkeeping: queued, or holding one of its slots.
  ListHook<Connection> gate_hook;
  bool gate_slot = false;
  // Sends the ClientHello; called by the gate when this connection's turn comes.
  void start_handshake() noexcept;

 private:
  void on_connected(int err) noexcept override;
  void on_sent(ssize_t res) noexcept override;
  void on_received(const char* data, ssize_t n) noexcept override;

  // http::H2Events, forwarded to the owner with this connection.
  void on_first_byte(void* user) noexcept override;
  void on_data(void* user, http::H2Response& r, const char* p, size_t n) noexcept override;
  void on_complete(void* user, http::H2Response& r) noexcept override;
  void on_stream_error(void* user, int status, std::string message, bool unprocessed) noexcept override;
  bool start_h2() noexcept;
  // Frames nghttp2 has ready -> TLS -> socket.
  void pump_h2() noexcept;

  void fail(int status, std::string message) noexcept;
  void flush() noexcept;
  // Plaintext from the peer; returns false when the connection was closed.
  bool consume(const char* data, size_t len) noexcept;
  void handle_eof() noexcept;
  void became_ready() noexcept;
  void begin_tls() noexcept;
  // The proxy's answer to CONNECT; false when the connection was closed.
  bool read_tunnel_reply(const char* data, size_t len) noexcept;
  // on_body if watched and the body grew; false when the owner closed us.
  bool report_body(size_t before) noexcept;

  ConnectionEnv env_;
  OriginPool* origin_;
  Socket* socket_ = nullptr;
  SockAddr addr_;
  State state_ = State::closed;
  bool use_tls_ = false;
  bool sending_ = false;
  bool abort_ = true;
  TlsSession tls_;
  std::string out_;       // ciphertext (or plaintext) waiting to be sent
  std::string in_flight_; // what the backend is sending now
  http::ResponseParser parser_;
  uint64_t responses_ = 0;
  bool reusable_ = false;
  bool watch_body_ = false;
  std::unique_ptr<http::H2Session> h2_;
  std::unique_ptr<http::ConnectResponse> tunnel_;  // while tunneling
  std::string h2_out_;  // plaintext frames waiting for TLS
};

}  // namespace barrage
