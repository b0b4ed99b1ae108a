// One connection's byte pipe: TCP, then an optional CONNECT through a
// proxy, then optional TLS, giving plaintext both ways. It knows nothing of
// HTTP. Failures close the socket before the user hears of them; a failure
// found while writing (inside write()) is reported only by the pool's next
// flush, so write() never calls back into its caller.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "http/connect_tunnel.hpp"
#include "loop/backend.hpp"
#include "loop/counter.hpp"
#include "loop/intrusive_list.hpp"
#include "net/resolver.hpp"
#include "net/tls_session.hpp"

namespace barrage {

class HandshakeGate;
class TlsContext;
struct ProxyConfig;

// Engine-wide pieces every transport borrows.
struct TransportEnv {
  Backend* backend = nullptr;
  TlsContext* tls = nullptr;
  HandshakeGate* handshakes = nullptr;  // nullptr: no cap on concurrent handshakes
  const ProxyConfig* proxy = nullptr;   // for transports opened with a tunnel
  std::string* scratch = nullptr;       // decrypted-bytes buffer, shared by all transports
  Counter* bytes_sent = nullptr;
  Counter* bytes_received = nullptr;
};

class TransportEvents {
 public:
  // Connected, tunneled and TLS established: plaintext may flow.
  virtual void on_established() noexcept = 0;
  // Plaintext from the peer. false: the user closed the transport inside.
  virtual bool on_plaintext(const char* data, size_t len) noexcept = 0;
  // The peer closed (TCP FIN or TLS close_notify) after establishment.
  virtual void on_peer_closed() noexcept = 0;
  // The transport failed and is closed. status is a brg_status.
  virtual void on_transport_failed(int status, std::string message) noexcept = 0;

 protected:
  ~TransportEvents() = default;
};

class Transport final : public SocketHandler {
 public:
  enum class State { idle, connecting, tunneling, handshaking, established, closed };

  Transport(const TransportEnv& env, TransportEvents* events) noexcept : env_(env), events_(events) {}
  ~Transport();  // releases the socket (RST when closed with abort)
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Starts connecting to addr (the proxy's when tunnel_to is set: CONNECT
  // to that host:port, then TLS as if direct). false with *err = errno when
  // no socket could be made.
  struct Target {
    bool tls = true;
    std::string host;  // SNI and certificate name
    bool host_is_ip = false;
    std::string session_key;  // TLS session resumption key (the origin)
    bool tunnel = false;
    uint16_t port = 0;  // the origin's, for CONNECT
  };
  bool open(const SockAddr& addr, const Target& target, int* err) noexcept;
  // Plaintext to the peer; state must be established.
  void write(std::string_view data) noexcept;
  // No event after this; the socket goes when the transport is destroyed.
  void close(bool abort) noexcept;
  // A failure found inside write() is reported now (the pool calls this
  // from its flush, where reporting cannot re-enter the writer).
  bool report_deferred_failure() noexcept;
  bool has_deferred_failure() const noexcept { return deferred_status_ != 0; }

  State state() const noexcept { return state_; }
  bool tls_resumed() const noexcept { return tls_.resumed(); }
  bool alpn_h2() const noexcept { return tls_on_ && tls_.alpn_h2(); }
  bool tls() const noexcept { return tls_on_; }
  // Frees the TLS record buffers (~34 KiB) of a connection left idle; the
  // next exchange allocates them again.
  void release_buffers() noexcept {
    if (tls_on_) tls_.release_buffers();
  }
  const SockAddr& address() const noexcept { return addr_; }
  // Bytes not yet handed to the kernel, or a send not yet completed.
  bool output_pending() const noexcept { return sending_ || !out_.empty(); }
  // A phrase for timeout messages: "TLS handshake with ", "connecting to ", ...
  const char* phase_text() const noexcept;

  // HandshakeGate's bookkeeping: queued, or holding one of its slots (the
  // gate's kind, 0 none), or probing for its origin's first ticket.
  ListHook<Transport> gate_hook;
  unsigned char gate_slot = 0;
  bool gate_probe = false;
  const void* gate_owner = nullptr;         // the origin whose share of the gate this uses
  const std::string* ticket_key = nullptr;  // its TlsContext key (the origin), once opened
  // For the gate: a handshake starting now would offer a session ticket;
  // it could (TLS with resumption on).
  bool offers_ticket() const noexcept;
  bool may_resume() const noexcept;
  // Sends the ClientHello; called by the gate when this transport's turn comes.
  void start_handshake() noexcept;

 private:
  void on_connected(int err) noexcept override;
  void on_sent(ssize_t res) noexcept override;
  void on_received(const char* data, ssize_t n) noexcept override;

  void fail(int status, std::string message) noexcept;
  void flush() noexcept;
  void begin_tls() noexcept;
  void established() noexcept;
  void handle_eof() noexcept;
  bool read_tunnel_reply(const char* data, size_t len) noexcept;

  TransportEnv env_;
  TransportEvents* events_;
  Socket* socket_ = nullptr;
  SockAddr addr_;
  Target target_;
  State state_ = State::idle;
  bool tls_on_ = false;
  bool sending_ = false;
  bool abort_ = true;
  int deferred_status_ = 0;
  std::string deferred_message_;
  TlsSession tls_;
  std::string out_;        // ciphertext (or plaintext) waiting to be sent
  std::string in_flight_;  // what the backend is sending now
  std::unique_ptr<http::ConnectResponse> tunnel_;  // while tunneling
};

}  // namespace barrage
