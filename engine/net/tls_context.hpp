// One SSL_CTX per engine: trust store, verification policy and the client
// session cache (one resumable session per origin).
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <unordered_map>

namespace barrage {

struct TlsOptions {
  bool verify_peer = true;
  std::string ca_file;  // extra trusted CAs (PEM), added to the system store
  bool resume = true;   // keep one session per origin and offer it on new connections
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

  // Borrowed; nullptr when the origin has no resumable session yet.
  SSL_SESSION* session_for(const std::string& origin) const noexcept;
  // Takes ownership of a new session for origin (replacing the previous one).
  void store_session(const std::string& origin, SSL_SESSION* session) noexcept;

 private:
  TlsContext() = default;
  SSL_CTX* ctx_ = nullptr;
  BIO_METHOD* bio_method_ = nullptr;
  bool verify_peer_ = true;
  int http_version_ = 0;
  std::unordered_map<std::string, SSL_SESSION*> sessions_;
};

// The OpenSSL error queue as one line (and clears it).
std::string tls_error_string();

}  // namespace barrage
