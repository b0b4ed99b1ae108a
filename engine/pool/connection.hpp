// One keep-alive HTTP/1.1 connection: socket, optional TLS, response
// parser. It moves bytes and reports events; which request it serves and
// what happens on failure is decided by its owner (the engine).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

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
  virtual void on_failure(Connection& c, int status, std::string message) noexcept = 0;

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
  std::string* scratch = nullptr;  // decrypted-bytes buffer, shared by all connections
  Counter* bytes_sent = nullptr;
  Counter* bytes_received = nullptr;
};

class Connection final : public SocketHandler {
 public:
  enum class State { connecting, handshaking, ready, busy, closed };

  Connection(const ConnectionEnv& env, OriginPool* origin) noexcept;
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Starts connecting to addr. false with *err = errno when no socket could be made.
  bool open(const SockAddr& addr, bool tls, const std::string& host, bool host_is_ip,
            const std::string& origin_key, int* err) noexcept;
  // Sends one serialized request (must outlive the response); state ready -> busy.
  // watch_body: report body progress with on_body (streamed answers).
  void send_request(std::string_view wire, bool head_request, bool watch_body = false) noexcept;
  // No event is reported after this; the socket is released (RST when
  // abort) when the connection is destroyed.
  void close(bool abort) noexcept;

  State state() const noexcept { return state_; }
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

  void fail(int status, std::string message) noexcept;
  void flush() noexcept;
  // Plaintext from the peer; returns false when the connection was closed.
  bool consume(const char* data, size_t len) noexcept;
  void handle_eof() noexcept;
  void became_ready() noexcept;
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
};

}  // namespace barrage
