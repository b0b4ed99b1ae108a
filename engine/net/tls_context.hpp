// One SSL_CTX per engine: trust store, verification policy and the client
// session cache (per origin: the tickets not yet offered, and the last one
// offered).
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace barrage {

struct TlsOptions {
  bool verify_peer = true;
  std::string ca_file;  // extra trusted CAs (PEM), added to the system store
  bool resume = true;   // keep sessions per origin and offer them on new connections
  int http_version = 0; // ALPN offer: 0 h2 and http/1.1, 1 http/1.1 only, 2 h2 only
};

class TlsContext {
 public:
  // nullptr and *err set when the CA file cannot be loaded.
  static std::unique_ptr<TlsContext> create(const TlsOptions& opts, std::string* err);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* native() const noexcept { return ctx_; }
  // The memory BIO type sessions use (owned here, so nothing is global).
  BIO_METHOD* bio_method() const noexcept { return bio_method_; }
  bool verify_peer() const noexcept { return verify_peer_; }
  int http_version() const noexcept { return http_version_; }
  bool resumes() const noexcept { return resume_; }

  // The session the next handshake to origin would offer, without taking it;
  // nullptr when the origin has none yet. Borrowed.
  SSL_SESSION* session_for(const std::string& origin) const noexcept;
  // The session a handshake starting now offers: a ticket no connection was
  // offered yet, newest first, while one is left; else the last one offered
  // again. A ticket offered on one connection only is what RFC 8446 C.4
  // asks of clients (reuse lets observers link connections), and servers
  // with anti-replay accept each ticket once (8.1), so a spent one is the
  // last resort. Borrowed until the next take or store for origin; the
  // handshake offers a copy (TlsSession::handshake says why).
  SSL_SESSION* take_session(const std::string& origin) noexcept;
  // Takes ownership of a new session (ticket) for origin. At most
  // kFreshTickets wait; a newer one pushes the oldest out.
  void store_session(const std::string& origin, SSL_SESSION* session) noexcept;

  static constexpr size_t kFreshTickets = 16;

 private:
  TlsContext() = default;
  SSL_CTX* ctx_ = nullptr;
  BIO_METHOD* bio_method_ = nullptr;
  bool verify_peer_ = true;
  int http_version_ = 0;
  bool resume_ = true;
  struct OriginTickets {
    std::vector<SSL_SESSION*> fresh;  // never offered; newest last
    SSL_SESSION* last = nullptr;      // offered most recently
  };
  std::unordered_map<std::string, OriginTickets> sessions_;
};

// The OpenSSL error queue as one line (and clears it).
std::string tls_error_string();

}  // namespace barrage
