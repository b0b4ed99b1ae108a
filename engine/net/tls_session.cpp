// TLS client over a custom BIO: reads come straight from the reactor's
// receive buffer (no copy into a memory BIO), writes are appended to the
// connection's send buffer, so one TLS session owns no buffers of its own
// between records (SSL_MODE_RELEASE_BUFFERS does the rest).
#include "net/tls_session.hpp"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <cstring>

#include "net/tls_context.hpp"

namespace barrage {

BIO_METHOD* TlsSession::make_bio_method() noexcept {
  BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "barrage-reactor");
  if (!m) return nullptr;
  BIO_meth_set_read(m, bio_read);
  BIO_meth_set_write(m, bio_write);
  BIO_meth_set_ctrl(m, bio_ctrl);
  BIO_meth_set_create(m, [](BIO* b) {
    BIO_set_init(b, 1);
    return 1;
  });
  return m;
}

int TlsSession::bio_read(BIO* b, char* buf, int len) {
  auto* self = static_cast<TlsSession*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  if (self->in_len_ == 0) {
    BIO_set_retry_read(b);
    return -1;
  }
  size_t n = std::min(self->in_len_, size_t(len));
  std::memcpy(buf, self->in_, n);
  self->in_ += n;
  self->in_len_ -= n;
  return int(n);
}

int TlsSession::bio_write(BIO* b, const char* buf, int len) {
  auto* self = static_cast<TlsSession*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  self->out_->append(buf, size_t(len));
  return len;
}

long TlsSession::bio_ctrl(BIO*, int cmd, long, void*) {
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

TlsSession::~TlsSession() { reset(); }

void TlsSession::reset() noexcept {
  // SSL_free without a shutdown marks the session non-resumable
  // (ssl_clear_bad_session). Closing after a clean exchange is not a reason
  // to forget the origin's session; a TLS error is.
  if (ssl_ && error_.empty() && SSL_is_init_finished(ssl_))
    SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  if (ssl_) SSL_free(ssl_);
  ssl_ = nullptr;
  ctx_ = nullptr;
  in_ = nullptr;
  in_len_ = 0;
  error_.clear();
  verify_failed_ = false;
}

bool TlsSession::init(TlsContext& ctx, const std::string& host, bool host_is_ip,
                      const std::string& origin, std::string* out, std::string* err) {
  reset();
  ERR_clear_error();
  origin_ = origin;
  out_ = out;
  ssl_ = SSL_new(ctx.native());
  BIO* bio = ssl_ ? BIO_new(ctx.bio_method()) : nullptr;
  if (!bio) {
    *err = "SSL_new: " + tls_error_string();
    return false;
  }
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // one BIO serves both directions
  SSL_set_app_data(ssl_, this);
  SSL_set_connect_state(ssl_);
  if (ctx.verify_peer()) {
    int ok = host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), host.c_str())
                        : SSL_set1_host(ssl_, host.c_str());
    if (ok != 1) {
      *err = "cannot set the name to verify: " + tls_error_string();
      return false;
    }
  }
  // SNI is only defined for host names (RFC 6066 section 3).
  if (!host_is_ip) SSL_set_tlsext_host_name(ssl_, host.c_str());
  ctx_ = &ctx;
  return true;
}

TlsSession::Status TlsSession::fail(int rc) noexcept {
  int e = SSL_get_error(ssl_, rc);
  switch (e) {
    case SSL_ERROR_WANT_READ:
      return Status::want_read;
    case SSL_ERROR_ZERO_RETURN:
      return Status::closed;
    default:
      break;
  }
  // With verification off OpenSSL still records a verify result; only a
  // verifying session may blame a failure on the certificate.
  long v = SSL_get_verify_result(ssl_);
  if (v != X509_V_OK && SSL_get_verify_mode(ssl_) != SSL_VERIFY_NONE && !SSL_is_init_finished(ssl_)) {
    verify_failed_ = true;
    error_ = std::string("certificate verification failed: ") + X509_verify_cert_error_string(v);
  } else {
    std::string q = tls_error_string();
    error_ = q.empty() ? "TLS failure (SSL error " + std::to_string(e) + ")" : q;
  }
  return Status::error;
}

TlsSession::Status TlsSession::handshake() noexcept {
  if (ctx_) {
    // The ticket is picked when the handshake starts, not when the SSL was
    // made: a connection that waited for a handshake slot can resume a
    // ticket an earlier connection got meanwhile.
    // Each connection offers its own copy: OpenSSL marks the session an SSL
    // offered as spent (non-resumable) when a TLS 1.3 handshake with it ends
    // (tls_finish_handshake: client sessions are single-use there), and the
    // session of any connection that ends in a fatal alert. The stored
    // ticket must stay offerable by the connections of a burst.
    if (SSL_SESSION* s = ctx_->take_session(origin_)) {
      SSL_SESSION* own = SSL_SESSION_dup(s);
      SSL_set_session(ssl_, own ? own : s);
      if (own) SSL_SESSION_free(own);  // the SSL holds its reference
    }
    ctx_ = nullptr;
  }
  ERR_clear_error();
  int rc = SSL_do_handshake(ssl_);
  return rc == 1 ? Status::done : fail(rc);
}

TlsSession::Status TlsSession::read(char* buf, size_t cap, size_t* n) noexcept {
  ERR_clear_error();
  *n = 0;
  int rc = SSL_read_ex(ssl_, buf, cap, n);
  return rc == 1 ? Status::done : fail(rc);
}

TlsSession::Status TlsSession::write(const char* data, size_t len) noexcept {
  ERR_clear_error();
  size_t written = 0;
  int rc = SSL_write_ex(ssl_, data, len, &written);
  return rc == 1 ? Status::done : fail(rc);
}

}  // namespace barrage
