// SSL_CTX set-up. Verification is on unless the embedder turns it off
// explicitly; the system store is always loaded so a test CA adds to it.
#include "net/tls_context.hpp"

#include <openssl/err.h>

#include "net/tls_session.hpp"

namespace barrage {

std::string tls_error_string() {
  std::string out;
  unsigned long e;
  char buf[256];
  while ((e = ERR_get_error()) != 0) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

std::unique_ptr<TlsContext> TlsContext::create(const TlsOptions& opts, std::string* err) {
  std::unique_ptr<TlsContext> c(new TlsContext);
  ERR_clear_error();
  c->ctx_ = SSL_CTX_new(TLS_client_method());
  if (!c->ctx_) {
    *err = "SSL_CTX_new: " + tls_error_string();
    return nullptr;
  }
  c->verify_peer_ = opts.verify_peer;
  c->bio_method_ = TlsSession::make_bio_method();
  if (!c->bio_method_) {
    *err = "BIO_meth_new failed";
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(c->ctx_, TLS1_2_VERSION);
  // A connection waiting for its answer then holds no ~17 KiB record buffer
  // (LLM answers take seconds; 1,000 in flight would pin 17 MiB). Measured
  // against nginx at latency 0 the per-record malloc/free costs ~1.5 us of
  // CPU per request; keeping the buffers raised RSS per connection at 1k from
  // 22-24 to 32-34 KiB. Memory wins: see README "Figures".
  SSL_CTX_set_mode(c->ctx_, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_default_verify_paths(c->ctx_) != 1) ERR_clear_error();
  if (!opts.ca_file.empty() &&
      SSL_CTX_load_verify_locations(c->ctx_, opts.ca_file.c_str(), nullptr) != 1) {
    *err = "cannot load CA file '" + opts.ca_file + "': " + tls_error_string();
    return nullptr;
  }
  SSL_CTX_set_verify(c->ctx_, opts.verify_peer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  // ALPN wire format: length-prefixed names, the preferred one first.
  static const unsigned char both[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  static const unsigned char h1[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  static const unsigned char h2[] = {2, 'h', '2'};
  c->http_version_ = opts.http_version;
  c->resume_ = opts.resume;
  if (opts.http_version == 1)
    SSL_CTX_set_alpn_protos(c->ctx_, h1, sizeof h1);
  else if (opts.http_version == 2)
    SSL_CTX_set_alpn_protos(c->ctx_, h2, sizeof h2);
  else
    SSL_CTX_set_alpn_protos(c->ctx_, both, sizeof both);
  // Sessions (TLS 1.3 tickets arrive after the handshake) are kept per
  // origin by the new-session callback rather than OpenSSL's internal cache.
  if (!opts.resume) {
    SSL_CTX_set_session_cache_mode(c->ctx_, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(c->ctx_, SSL_OP_NO_TICKET);
    return c;
  }
  SSL_CTX_set_session_cache_mode(c->ctx_, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_set_app_data(c->ctx_, c.get());
  SSL_CTX_sess_set_new_cb(c->ctx_, [](SSL* ssl, SSL_SESSION* sess) -> int {
    auto* self = static_cast<TlsContext*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
    auto* session = static_cast<TlsSession*>(SSL_get_app_data(ssl));
    if (!self || !session) return 0;
    self->store_session(session->origin(), sess);
    return 1;
  });
  return c;
}

TlsContext::~TlsContext() {
  for (auto& [origin, t] : sessions_) {
    for (SSL_SESSION* s : t.fresh) SSL_SESSION_free(s);
    if (t.last) SSL_SESSION_free(t.last);
  }
  if (ctx_) SSL_CTX_free(ctx_);
  if (bio_method_) BIO_meth_free(bio_method_);
}

SSL_SESSION* TlsContext::session_for(const std::string& origin) const noexcept {
  auto it = sessions_.find(origin);
  if (it == sessions_.end()) return nullptr;
  return it->second.fresh.empty() ? it->second.last : it->second.fresh.back();
}

SSL_SESSION* TlsContext::take_session(const std::string& origin) noexcept {
  auto it = sessions_.find(origin);
  if (it == sessions_.end()) return nullptr;
  OriginTickets& t = it->second;
  if (!t.fresh.empty()) {
    if (t.last) SSL_SESSION_free(t.last);
    t.last = t.fresh.back();
    t.fresh.pop_back();
  }
  return t.last;
}

void TlsContext::store_session(const std::string& origin, SSL_SESSION* session) noexcept {
  try {
    OriginTickets& t = sessions_[origin];
    if (t.fresh.size() >= kFreshTickets) {
      SSL_SESSION_free(t.fresh.front());
      t.fresh.erase(t.fresh.begin());
    }
    t.fresh.push_back(session);
  } catch (...) {  // out of memory: this ticket is lost, resumption goes on with the others
    SSL_SESSION_free(session);
  }
}

}  // namespace barrage
