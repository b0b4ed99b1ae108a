// One client TLS connection whose ciphertext never touches a socket: the
// reactor hands received bytes in, and encrypted output is appended to a
// buffer the reactor sends. Same state machine on both backends.
#pragma once

#include <openssl/ssl.h>

#include <string>

namespace barrage {

class TlsContext;

class TlsSession {
 public:
  enum class Status { done, want_read, closed, error };

  TlsSession() = default;
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Ciphertext produced by the session is appended to *out.
  bool init(TlsContext& ctx, const std::string& host, bool host_is_ip, const std::string& origin,
            std::string* out, std::string* err);
  void reset() noexcept;

  // Makes received ciphertext available to the next calls; it must be
  // consumed before the caller's buffer goes away (read() until want_read).
  void feed(const char* data, size_t len) noexcept { in_ = data, in_len_ = len; }
  size_t unread() const noexcept { return in_len_; }
  // Received bytes not yet handed to read(), or decrypted ones not yet taken.
  bool has_input() const noexcept { return in_len_ > 0 || (ssl_ && SSL_has_pending(ssl_)); }
  // Frees OpenSSL's record buffers (~17 KiB read, ~1 KiB write) of an idle
  // connection. SSL_MODE_RELEASE_BUFFERS alone leaves the read buffer
  // allocated whenever the last read() ended waiting for a record header,
  // which is how every keep-alive connection goes idle.
  void release_buffers() noexcept {
    if (ssl_) (void)SSL_free_buffers(ssl_);
  }

  Status handshake() noexcept;
  // Decrypts into buf; *n = bytes produced. done with *n > 0, want_read when
  // input is exhausted, closed on close_notify, error otherwise.
  Status read(char* buf, size_t cap, size_t* n) noexcept;
  // Encrypts all of data into the output buffer.
  Status write(const char* data, size_t len) noexcept;

  bool handshake_done() const noexcept { return ssl_ && SSL_is_init_finished(ssl_); }
  bool resumed() const noexcept { return ssl_ && SSL_session_reused(ssl_); }
  // The server chose HTTP/2 with ALPN (valid once the handshake is done).
  bool alpn_h2() const noexcept {
    const unsigned char* p = nullptr;
    unsigned int n = 0;
    if (ssl_) SSL_get0_alpn_selected(ssl_, &p, &n);
    return n == 2 && p[0] == 'h' && p[1] == '2';
  }
  // Certificate verification failed (as opposed to a transport failure).
  bool verify_failed() const noexcept { return verify_failed_; }
  const std::string& error() const noexcept { return error_; }
  const std::string& origin() const noexcept { return origin_; }

  // The BIO type whose read side is feed() and whose write side is *out.
  static BIO_METHOD* make_bio_method() noexcept;

 private:
  Status fail(int rc) noexcept;
  static int bio_read(BIO* b, char* buf, int len);
  static int bio_write(BIO* b, const char* buf, int len);
  static long bio_ctrl(BIO* b, int cmd, long num, void* ptr);

  SSL* ssl_ = nullptr;
  TlsContext* ctx_ = nullptr;  // until the first handshake() call
  const char* in_ = nullptr;
  size_t in_len_ = 0;
  std::string* out_ = nullptr;
  std::string origin_;
  std::string error_;
  bool verify_failed_ = false;
};

}  // namespace barrage
