// The test HTTP/2 peer: one poll loop over the listening socket and every
// connection; TLS through OpenSSL on non-blocking sockets, HTTP/2 framing
// through an nghttp2 server session. See h2_peer.hpp for what it records.
#include "h2_peer.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>

#include "test_ca.hpp"

namespace barrage::test_support {

using Clock = std::chrono::steady_clock;

struct H2Peer::Stream {
  int32_t id = 0;
  bool ignored = false;         // refused, or above our GOAWAY: never answered
  bool answer_pending = false;  // request complete, answer due at answer_at
  Clock::time_point answer_at{};
  bool streaming = false;       // answering with server-sent events
  int events_due = 0, events_sent = 0;
  bool done_sent = false;
  Clock::time_point next_event_at{};
  std::string out;  // bytes of the body not yet handed to nghttp2
  size_t out_off = 0;
  bool body_complete = false;  // JSON answer: out is the whole body
};

struct H2Peer::Conn {
  H2Peer* peer = nullptr;
  int id = 0;
  int fd = -1;
  SSL* ssl = nullptr;
  bool handshaken = false;
  nghttp2_session* session = nullptr;
  std::string out;  // TLS plaintext not yet accepted by SSL_write
  std::map<int32_t, std::unique_ptr<Stream>> streams;
  int requests = 0;
  int32_t goaway_last = -1;
  bool dead = false;
  ~Conn() {
    if (session) nghttp2_session_del(session);
    if (ssl) SSL_free(ssl);
    if (fd >= 0) ::close(fd);
  }
};

namespace {

int alpn_select(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
  for (unsigned int i = 0; i < inlen;) {
    unsigned int len = in[i];
    if (i + 1 + len > inlen) break;
    if (len == 2 && std::memcmp(in + i + 1, "h2", 2) == 0) {
      *out = in + i + 1;
      *outlen = 2;
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;  // this peer speaks HTTP/2 only
}

std::string chunk_event(int n) {
  return "data: {\"id\":\"chatcmpl-h2peer\",\"object\":\"chat.completion.chunk\",\"model\":\"mock-1\","
         "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok" +
         std::to_string(n) + " \"},\"finish_reason\":null}]}\n\n";
}

const char kJsonAnswer[] =
    "{\"id\":\"chatcmpl-h2peer\",\"object\":\"chat.completion\",\"model\":\"mock-1\","
    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"ok\"},"
    "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,"
    "\"total_tokens\":4}}";

}  // namespace

// nghttp2 callbacks; a friend of H2Peer so it may record and read options.
struct H2PeerCallbacks {
  static H2Peer::Stream* find(H2Peer::Conn& c, int32_t id) {
    auto it = c.streams.find(id);
    return it == c.streams.end() ? nullptr : it->second.get();
  }

  static ssize_t read_body(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                           nghttp2_data_source* source, void* user) {
    auto& c = *static_cast<H2Peer::Conn*>(user);
    auto* s = static_cast<H2Peer::Stream*>(source->ptr);
    const H2PeerOptions& o = c.peer->options_;
    if (s->out_off == s->out.size() && s->streaming) {
      s->out.clear();
      s->out_off = 0;
      if (s->events_sent < s->events_due) {
        s->out = chunk_event(++s->events_sent);
      } else if (s->events_sent >= o.stream_events && !s->done_sent) {
        s->out = "data: [DONE]\n\n";
        s->done_sent = true;
      }
    }
    size_t n = std::min(length, s->out.size() - s->out_off);
    std::memcpy(buf, s->out.data() + s->out_off, n);
    s->out_off += n;
    if (s->out_off == s->out.size()) {
      if (s->body_complete || s->done_sent) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
      } else if (n == 0) {
        return NGHTTP2_ERR_DEFERRED;  // the next event is not due yet
      }
    }
    return ssize_t(n);
  }

  static void request_complete(H2Peer::Conn& c, H2Peer::Stream& s) {
    if (s.ignored || s.answer_pending) return;
    s.answer_pending = true;
    s.answer_at = Clock::now() + std::chrono::milliseconds(c.peer->options_.answer_delay_ms);
  }

  static void new_request(H2Peer::Conn& c, H2Peer::Stream& s) {
    H2Peer& p = *c.peer;
    const H2PeerOptions& o = p.options_;
    ++c.requests;
    int n = ++p.streams_seen_;
    if (c.goaway_last >= 0 && s.id > c.goaway_last) {
      s.ignored = true;
      p.record({H2PeerEvent::ignored, c.id, s.id, 0, c.goaway_last, Clock::now()});
      return;
    }
    if (o.refuse_all || (o.refuse_every > 0 && n % o.refuse_every == 0)) {
      s.ignored = true;
      nghttp2_submit_rst_stream(c.session, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_REFUSED_STREAM);
      p.record({H2PeerEvent::refused, c.id, s.id, NGHTTP2_REFUSED_STREAM, 0, Clock::now()});
      return;
    }
    if (o.goaway_after > 0 && c.requests == o.goaway_after) {
      c.goaway_last = s.id;
      nghttp2_submit_goaway(c.session, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_NO_ERROR, nullptr, 0);
      p.record({H2PeerEvent::goaway_sent, c.id, 0, NGHTTP2_NO_ERROR, s.id, Clock::now()});
    }
  }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto& c = *static_cast<H2Peer::Conn*>(user);
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      auto s = std::make_unique<H2Peer::Stream>();
      s->id = frame->hd.stream_id;
      c.streams[s->id] = std::move(s);
    }
    return 0;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto& c = *static_cast<H2Peer::Conn*>(user);
    H2Peer& p = *c.peer;
    const auto now = Clock::now();
    const int32_t id = frame->hd.stream_id;
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS:
        if (H2Peer::Stream* s = find(c, id); s && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
          p.record({H2PeerEvent::headers, c.id, id, 0, 0, now});
          new_request(c, *s);
          if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) request_complete(c, *s);
        }
        break;
      case NGHTTP2_DATA:
        if (H2Peer::Stream* s = find(c, id); s && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
          request_complete(c, *s);
        break;
      case NGHTTP2_RST_STREAM:
        p.record({H2PeerEvent::rst_stream, c.id, id, frame->rst_stream.error_code, 0, now});
        break;
      case NGHTTP2_GOAWAY:
        p.record({H2PeerEvent::goaway, c.id, 0, frame->goaway.error_code, frame->goaway.last_stream_id, now});
        break;
      default:
        break;
    }
    return 0;
  }

  static int on_stream_close(nghttp2_session*, int32_t id, uint32_t, void* user) {
    static_cast<H2Peer::Conn*>(user)->streams.erase(id);
    return 0;
  }

  static void answer(H2Peer::Conn& c, H2Peer::Stream& s) {
    const H2PeerOptions& o = c.peer->options_;
    s.answer_pending = false;
    const bool sse = o.stream_interval_ms > 0;
    const char* type = sse ? "text/event-stream" : "application/json";
    nghttp2_nv nva[] = {
        {(uint8_t*)":status", (uint8_t*)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t*)"content-type", (uint8_t*)type, 12, strlen(type), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t*)"x-request-id", (uint8_t*)"req_h2peer", 12, 10, NGHTTP2_NV_FLAG_NONE},
    };
    if (sse) {
      s.streaming = true;
      s.next_event_at = Clock::now() + std::chrono::milliseconds(o.stream_interval_ms);
      s.events_due = 1;  // the first event goes out with the head
    } else {
      s.out = kJsonAnswer;
      s.body_complete = true;
    }
    nghttp2_data_provider dp{};
    dp.source.ptr = &s;
    dp.read_callback = read_body;
    nghttp2_submit_response(c.session, s.id, nva, 3, &dp);
  }

// Feeds everything readable into the session. False when the connection
// ended; *eof then says how (see H2PeerEvent::error_code).
static bool pump_in(H2Peer::Conn& c, int* eof) {
  uint8_t buf[16384];
  for (;;) {
    int n = SSL_read(c.ssl, buf, sizeof buf);
    if (n > 0) {
      if (nghttp2_session_mem_recv(c.session, buf, size_t(n)) < 0) return false;
      continue;
    }
    int err = SSL_get_error(c.ssl, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return true;
    // close_notify or a plain FIN: 0; a reset: ECONNRESET; a TLS error: -1.
    *eof = err == SSL_ERROR_ZERO_RETURN ? 0 : err == SSL_ERROR_SYSCALL && errno ? errno : -1;
    ERR_clear_error();
    return false;
  }
}

// Moves the session's output into TLS records. False on a write error.
static bool pump_out(H2Peer::Conn& c) {
  for (;;) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(c.session, &data);
    if (n < 0) return false;
    if (n == 0) break;
    c.out.append(reinterpret_cast<const char*>(data), size_t(n));
  }
  while (!c.out.empty()) {
    int n = SSL_write(c.ssl, c.out.data(), int(std::min<size_t>(c.out.size(), 1 << 20)));
    if (n > 0) {
      c.out.erase(0, size_t(n));
      continue;
    }
    int err = SSL_get_error(c.ssl, n);
    ERR_clear_error();
    return err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ;
  }
  return true;
}

};

H2Peer::H2Peer(H2PeerOptions options) : options_(options) {
  std::string err;
  std::vector<std::string> sans{"DNS:localhost", "IP:127.0.0.1", "IP:::1"};
  if (options_.address != "127.0.0.1") sans.push_back("IP:" + options_.address);
  const mock::TestCa ca = mock::TestCa::create(&err);
  mock::CertBundle b = ca.valid() ? ca.issue(sans, &err) : mock::CertBundle{};
  if (!b.ok()) {
    error_ = "certificate: " + err;
    return;
  }
  ca_pem_ = b.ca_pem;
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  ssl_ctx_ = ctx;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_alpn_select_cb(ctx, alpn_select, nullptr);
  BIO* cb = BIO_new_mem_buf(b.cert_pem.data(), int(b.cert_pem.size()));
  BIO* kb = BIO_new_mem_buf(b.key_pem.data(), int(b.key_pem.size()));
  X509* cert = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
  BIO_free(cb);
  BIO_free(kb);
  const bool loaded = cert && key && SSL_CTX_use_certificate(ctx, cert) == 1 && SSL_CTX_use_PrivateKey(ctx, key) == 1;
  X509_free(cert);
  EVP_PKEY_free(key);
  if (!loaded) {
    error_ = "cannot load the test certificate";
    return;
  }
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  socklen_t len = sizeof a;
  if (inet_pton(AF_INET, options_.address.c_str(), &a.sin_addr) != 1) {
    error_ = "not an IPv4 address: " + options_.address;
    return;
  }
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_fd_, 512) != 0 || ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    error_ = std::string("listen: ") + std::strerror(errno);
    return;
  }
  port_ = ntohs(a.sin_port);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    error_ = "eventfd failed";
    return;
  }
  thread_ = std::thread([this] { run(); });
}

H2Peer::~H2Peer() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    ssize_t n = ::write(wake_fd_, &one, sizeof one);
    (void)n;
    thread_.join();
  }
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (ssl_ctx_) SSL_CTX_free(static_cast<SSL_CTX*>(ssl_ctx_));
}

std::string H2Peer::url(const std::string& path) const {
  return "https://" + options_.address + ":" + std::to_string(port_) + path;
}

const char* H2Peer::json_answer() noexcept { return kJsonAnswer; }

void H2Peer::record(H2PeerEvent e) {
  std::lock_guard<std::mutex> lock(mu_);
  events_.push_back(e);
}

std::vector<H2PeerEvent> H2Peer::events() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_;
}

size_t H2Peer::count(H2PeerEvent::Kind kind) const {
  std::lock_guard<std::mutex> lock(mu_);
  return size_t(std::count_if(events_.begin(), events_.end(), [&](const H2PeerEvent& e) { return e.kind == kind; }));
}

bool H2Peer::wait_for(const std::function<bool(const std::vector<H2PeerEvent>&)>& pred,
                      std::chrono::milliseconds limit) const {
  const auto until = Clock::now() + limit;
  for (;;) {
    if (pred(events())) return true;
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void H2Peer::run() noexcept {
  std::vector<std::unique_ptr<Conn>> conns;
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, H2PeerCallbacks::on_begin_headers);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, H2PeerCallbacks::on_frame_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, H2PeerCallbacks::on_stream_close);
  int next_conn = 0;

  for (;;) {
    // Timers: answers and events that are due, and how long poll may sleep.
    auto now = Clock::now();
    auto wake = now + std::chrono::milliseconds(50);
    for (auto& c : conns) {
      if (!c->handshaken || c->dead) continue;
      for (auto& [id, s] : c->streams) {
        if (s->answer_pending) {
          if (s->answer_at <= now) H2PeerCallbacks::answer(*c, *s);
          else wake = std::min(wake, s->answer_at);
        }
        if (s->streaming && s->events_due < options_.stream_events) {
          if (s->next_event_at <= now) {
            ++s->events_due;
            s->next_event_at += std::chrono::milliseconds(options_.stream_interval_ms);
            nghttp2_session_resume_data(c->session, id);
          }
          wake = std::min(wake, s->next_event_at);
        } else if (s->streaming && !s->done_sent) {
          nghttp2_session_resume_data(c->session, id);
        }
      }
      if (!H2PeerCallbacks::pump_out(*c)) c->dead = true;
    }
    // Drop dead connections. The others, those we sent GOAWAY on included,
    // stay open until the client closes them, as RFC 9113 6.8 asks of a
    // graceful shutdown: closing with the client's in-flight HEADERS unread
    // makes the kernel send RST, which can destroy the GOAWAY before the
    // client reads it (then nobody can tell those streams were never
    // processed), and the client's EOF is seen (and recorded) after its GOAWAY.
    std::erase_if(conns, [](const std::unique_ptr<Conn>& c) { return c->dead; });

    std::vector<pollfd> pfds;
    pfds.push_back({wake_fd_, POLLIN, 0});
    pfds.push_back({listen_fd_, POLLIN, 0});
    for (auto& c : conns) pfds.push_back({c->fd, short(POLLIN | (c->out.empty() ? 0 : POLLOUT)), 0});
    int timeout = int(std::chrono::duration_cast<std::chrono::milliseconds>(wake - Clock::now()).count()) + 1;
    if (::poll(pfds.data(), pfds.size(), std::max(timeout, 0)) < 0 && errno != EINTR) break;
    if (pfds[0].revents) break;
    if (pfds[1].revents & POLLIN) {
      for (;;) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        auto c = std::make_unique<Conn>();
        c->peer = this;
        c->id = ++next_conn;
        c->fd = fd;
        c->ssl = SSL_new(static_cast<SSL_CTX*>(ssl_ctx_));
        SSL_set_fd(c->ssl, fd);
        SSL_set_accept_state(c->ssl);
        record({H2PeerEvent::connected, c->id, 0, 0, 0, Clock::now()});
        conns.push_back(std::move(c));
      }
    }
    for (size_t i = 2; i < pfds.size(); ++i) {
      Conn& c = *conns[i - 2];
      if (!pfds[i].revents) continue;
      if (!c.handshaken) {
        int rc = SSL_do_handshake(c.ssl);
        if (rc != 1) {
          int err = SSL_get_error(c.ssl, rc);
          ERR_clear_error();
          if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) c.dead = true;
          continue;
        }
        c.handshaken = true;
        nghttp2_session_server_new(&c.session, cbs, &c);
        nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, options_.max_concurrent_streams},
                                       {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
        nghttp2_submit_settings(c.session, NGHTTP2_FLAG_NONE, iv, 2);
      }
      int eof = -1;
      if (!H2PeerCallbacks::pump_in(c, &eof)) {
        record({H2PeerEvent::eof, c.id, 0, uint32_t(eof), 0, Clock::now()});
        c.dead = true;
        continue;
      }
      if (!H2PeerCallbacks::pump_out(c)) c.dead = true;
    }
  }
  conns.clear();
  nghttp2_session_callbacks_del(cbs);
}

}  // namespace barrage::test_support
