// sse_h2_server: the server of bench_streams. An HTTP/2-over-TLS peer built
// to hold 100,000 concurrent server-sent-event streams on one core: epoll,
// one nghttp2 server session per connection, and one min-heap of the events
// due (no scan over every stream per wake-up, unlike tests/support/h2_peer).
//
// A request to /sse/<events>/<interval_ms>[/<step_ms>] is answered 200 text/event-stream
// and gets <events> OpenAI chat.completion.chunk events <interval_ms> apart,
// then "data: [DONE]" and END_STREAM. The first event comes a random part of
// the interval after the request (uniform in (0, interval]): streams of
// real providers are not in step, and 100 streams opened together on one
// connection would otherwise all fall due in the same millisecond forever.
// With <step_ms> > 0 events leave only at multiples of it (CLOCK_MONOTONIC),
// the way a model server's decode step yields one token for every sequence
// of its batch at once: each connection's events of one step share a TLS
// write. Without it (0) every event is written alone, the worst case for
// both ends. Each
// event carries "t_ns": CLOCK_MONOTONIC when the server wrote it into the
// connection's output (the client's clock on the same host), so a client can
// tell how late it delivered the event. Events of one connection that fall
// due together leave in one TLS write.
//
// Usage: sse_h2_server CA_PEM_OUT MAX_CONCURRENT_STREAMS...
// Issues a certificate for 127.0.0.1 from a fresh test CA (written to
// CA_PEM_OUT), listens on 127.0.0.1 once per MAX_CONCURRENT_STREAMS given
// (the SETTINGS value that listener's connections announce; so one server
// can be asked for 100 streams per connection on one port and 10 on
// another), each with a kernel-chosen port, prints "port N" for each in
// order on stdout, and serves until stdin reaches EOF (its parent died or
// closed the pipe) or SIGTERM.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "test_ca.hpp"

namespace {

int64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct Stream {
  int32_t id = 0;
  std::string path;
  int events = 0, interval_ms = 0, step_ms = 0;
  int due = 0, sent = 0;  // events that fell due / were written
  bool done_sent = false;
  std::string out;  // bytes not yet handed to nghttp2
  size_t off = 0;
};

struct Conn {
  uint64_t serial = 0;
  int fd = -1;
  SSL* ssl = nullptr;
  bool handshaken = false;
  uint32_t max_streams = 100;  // announced in SETTINGS
  bool dirty = false;      // on the pump list
  bool want_out = false;   // EPOLLOUT armed
  bool dead = false;
  nghttp2_session* session = nullptr;
  std::string out;  // TLS plaintext SSL_write has not taken yet
  size_t out_off = 0;
  std::unordered_map<int32_t, Stream> streams;
  ~Conn() {
    if (session) nghttp2_session_del(session);
    if (ssl) SSL_free(ssl);
    if (fd >= 0) ::close(fd);
  }
};

struct Due {
  int64_t at;     // when it leaves: `exact` rounded up to the stream's step
  int64_t exact;  // when it falls due; the next one is an interval later
  uint64_t conn;
  int32_t stream;
  bool operator>(const Due& o) const { return at > o.at; }
};

struct Server {
  int ep = -1;
  std::vector<int> listen_fds;         // listener i has epoll key kListener - i
  std::vector<uint32_t> max_streams;   // what listener i's connections announce
  SSL_CTX* ctx = nullptr;
  nghttp2_session_callbacks* cbs = nullptr;
  uint64_t next_serial = 1;
  uint64_t rng = 0x9e3779b97f4a7c15;  // first-event phases; fixed seed, same run to run
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns;
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> timers;
  std::vector<Conn*> pump_list;
};

constexpr uint64_t kStdin = UINT64_MAX, kListener = UINT64_MAX - 1;  // epoll keys; connections are 1..

Server g;  // one per process; the callbacks reach it through here
volatile sig_atomic_t g_stop = 0;

void mark(Conn& c) {
  if (!c.dirty) {
    c.dirty = true;
    g.pump_list.push_back(&c);
  }
}

void append_event(std::string& out, int n, int64_t t) {
  char buf[320];
  int len = std::snprintf(buf, sizeof buf,
                          "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":0,"
                          "\"model\":\"mock-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" tok%d\"},"
                          "\"finish_reason\":null}],\"t_ns\":%lld}\n\n",
                          n, (long long)t);
  out.append(buf, size_t(len));
}

void push_due(const Stream& s, int64_t exact, uint64_t conn) {
  const int64_t step = int64_t(s.step_ms) * 1'000'000;
  const int64_t at = step > 0 ? (exact + step - 1) / step * step : exact;
  g.timers.push({at, exact, conn, s.id});
}

ssize_t read_body(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                  nghttp2_data_source* source, void*) {
  auto& s = *static_cast<Stream*>(source->ptr);
  if (s.off == s.out.size()) {
    s.out.clear();
    s.off = 0;
    if (s.sent < s.due) {
      const int64_t t = mono_ns();  // stamped as it goes into the connection's output
      while (s.sent < s.due) append_event(s.out, ++s.sent, t);
    } else if (s.sent >= s.events && !s.done_sent) {
      s.out = "data: [DONE]\n\n";
      s.done_sent = true;
    }
  }
  const size_t n = std::min(length, s.out.size() - s.off);
  std::memcpy(buf, s.out.data() + s.off, n);
  s.off += n;
  if (s.off == s.out.size()) {
    if (s.done_sent) *flags |= uint32_t(NGHTTP2_DATA_FLAG_EOF);
    else if (n == 0) return NGHTTP2_ERR_DEFERRED;
  }
  return ssize_t(n);
}

void answer(Conn& c, Stream& s) {
  int events = 0, interval = 0, step = 0;
  const bool ok = std::sscanf(s.path.c_str(), "/sse/%d/%d/%d", &events, &interval, &step) >= 2 && events >= 0 &&
                  interval > 0 && step >= 0;
  if (!ok) {
    nghttp2_nv nv[] = {{(uint8_t*)":status", (uint8_t*)"404", 7, 3, NGHTTP2_NV_FLAG_NONE}};
    nghttp2_submit_response(c.session, s.id, nv, 1, nullptr);
    return;
  }
  s.events = events;
  s.interval_ms = interval;
  s.step_ms = step;
  nghttp2_nv nv[] = {
      {(uint8_t*)":status", (uint8_t*)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
      {(uint8_t*)"content-type", (uint8_t*)"text/event-stream", 12, 17, NGHTTP2_NV_FLAG_NONE},
      {(uint8_t*)"x-request-id", (uint8_t*)"req_bench", 12, 9, NGHTTP2_NV_FLAG_NONE},
  };
  nghttp2_data_provider dp{};
  dp.source.ptr = &s;
  dp.read_callback = read_body;
  nghttp2_submit_response(c.session, s.id, nv, 3, &dp);
  if (events > 0) {
    g.rng ^= g.rng << 13, g.rng ^= g.rng >> 7, g.rng ^= g.rng << 17;  // xorshift64
    const int64_t phase = 1 + int64_t(g.rng % uint64_t(int64_t(interval) * 1'000'000));
    push_due(s, mono_ns() + phase, c.serial);
  }
}

int on_begin_headers(nghttp2_session*, const nghttp2_frame* f, void* user) {
  auto& c = *static_cast<Conn*>(user);
  if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) c.streams[f->hd.stream_id].id = f->hd.stream_id;
  return 0;
}

int on_header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t namelen, const uint8_t* value,
              size_t valuelen, uint8_t, void* user) {
  auto& c = *static_cast<Conn*>(user);
  if (f->hd.type != NGHTTP2_HEADERS || namelen != 5 || std::memcmp(name, ":path", 5) != 0) return 0;
  auto it = c.streams.find(f->hd.stream_id);
  if (it != c.streams.end()) it->second.path.assign(reinterpret_cast<const char*>(value), valuelen);
  return 0;
}

int on_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* user) {
  auto& c = *static_cast<Conn*>(user);
  if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
    auto it = c.streams.find(f->hd.stream_id);
    if (it != c.streams.end()) answer(c, it->second);
  }
  return 0;
}

int on_stream_close(nghttp2_session*, int32_t id, uint32_t, void* user) {
  static_cast<Conn*>(user)->streams.erase(id);
  return 0;
}

int alpn_select(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
                void*) {
  for (unsigned int i = 0; i < inlen;) {
    const unsigned int len = in[i];
    if (i + 1 + len > inlen) break;
    if (len == 2 && std::memcmp(in + i + 1, "h2", 2) == 0) {
      *out = in + i + 1;
      *outlen = 2;
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

void want_out(Conn& c, bool on) {
  if (c.want_out == on) return;
  c.want_out = on;
  epoll_event ev{};
  ev.events = on ? uint32_t(EPOLLIN | EPOLLOUT) : uint32_t(EPOLLIN);
  ev.data.u64 = c.serial;
  epoll_ctl(g.ep, EPOLL_CTL_MOD, c.fd, &ev);
}

// Session output into TLS records and the socket.
void pump_out(Conn& c) {
  if (c.dead || !c.session) return;
  for (;;) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(c.session, &data);
    if (n < 0) {
      c.dead = true;
      return;
    }
    if (n == 0) break;
    c.out.append(reinterpret_cast<const char*>(data), size_t(n));
  }
  while (c.out_off < c.out.size()) {
    const int n = SSL_write(c.ssl, c.out.data() + c.out_off, int(std::min<size_t>(c.out.size() - c.out_off, 1 << 20)));
    if (n > 0) {
      c.out_off += size_t(n);
      continue;
    }
    const int err = SSL_get_error(c.ssl, n);
    ERR_clear_error();
    if (err != SSL_ERROR_WANT_WRITE && err != SSL_ERROR_WANT_READ) c.dead = true;
    break;
  }
  if (c.out_off == c.out.size()) {
    c.out.clear();
    c.out_off = 0;
  }
  want_out(c, c.out_off < c.out.size());
  if (!nghttp2_session_want_read(c.session) && !nghttp2_session_want_write(c.session) && c.out.empty()) c.dead = true;
}

void on_readable(Conn& c) {
  if (!c.handshaken) {
    const int rc = SSL_do_handshake(c.ssl);
    if (rc != 1) {
      const int err = SSL_get_error(c.ssl, rc);
      ERR_clear_error();
      if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) c.dead = true;
      return;
    }
    c.handshaken = true;
    nghttp2_session_server_new(&c.session, g.cbs, &c);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, c.max_streams},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
    nghttp2_submit_settings(c.session, NGHTTP2_FLAG_NONE, iv, 2);
  }
  uint8_t buf[16384];
  for (;;) {
    const int n = SSL_read(c.ssl, buf, sizeof buf);
    if (n > 0) {
      if (nghttp2_session_mem_recv(c.session, buf, size_t(n)) < 0) {
        c.dead = true;
        return;
      }
      continue;
    }
    const int err = SSL_get_error(c.ssl, n);
    ERR_clear_error();
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) c.dead = true;
    break;
  }
  mark(c);
}

void accept_all(size_t listener) {
  for (;;) {
    const int fd = ::accept4(g.listen_fds[listener], nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto c = std::make_unique<Conn>();
    c->serial = g.next_serial++;
    c->fd = fd;
    c->max_streams = g.max_streams[listener];
    c->ssl = SSL_new(g.ctx);
    SSL_set_fd(c->ssl, fd);
    SSL_set_accept_state(c->ssl);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = c->serial;
    epoll_ctl(g.ep, EPOLL_CTL_ADD, fd, &ev);
    g.conns.emplace(c->serial, std::move(c));
  }
}

// Events that fell due: each stream's count goes up and its data resumes.
void fire_timers() {
  const int64_t now = mono_ns();
  while (!g.timers.empty() && g.timers.top().at <= now) {
    const Due d = g.timers.top();
    g.timers.pop();
    auto ci = g.conns.find(d.conn);
    if (ci == g.conns.end() || ci->second->dead) continue;
    Conn& c = *ci->second;
    auto si = c.streams.find(d.stream);
    if (si == c.streams.end()) continue;
    Stream& s = si->second;
    ++s.due;
    if (s.due < s.events) push_due(s, d.exact + int64_t(s.interval_ms) * 1'000'000, d.conn);
    nghttp2_session_resume_data(c.session, s.id);
    mark(c);
  }
}

bool setup(const char* ca_out) {
  std::string err;
  const barrage::mock::TestCa ca = barrage::mock::TestCa::create(&err);
  const barrage::mock::CertBundle b =
      ca.valid() ? ca.issue({"DNS:localhost", "IP:127.0.0.1"}, &err) : barrage::mock::CertBundle{};
  if (!b.ok() || !barrage::mock::write_file(ca_out, b.ca_pem)) {
    std::fprintf(stderr, "sse_h2_server: certificate: %s\n", err.c_str());
    return false;
  }
  g.ctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_set_min_proto_version(g.ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(g.ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(g.ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_alpn_select_cb(g.ctx, alpn_select, nullptr);
  BIO* cb = BIO_new_mem_buf(b.cert_pem.data(), int(b.cert_pem.size()));
  BIO* kb = BIO_new_mem_buf(b.key_pem.data(), int(b.key_pem.size()));
  X509* cert = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
  BIO_free(cb);
  BIO_free(kb);
  const bool loaded = cert && key && SSL_CTX_use_certificate(g.ctx, cert) == 1 && SSL_CTX_use_PrivateKey(g.ctx, key) == 1;
  X509_free(cert);
  EVP_PKEY_free(key);
  if (!loaded) return false;

  g.ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kStdin;
  epoll_ctl(g.ep, EPOLL_CTL_ADD, STDIN_FILENO, &ev);
  std::string ports;
  for (size_t i = 0; i < g.max_streams.size(); ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 4096) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      std::perror("sse_h2_server: listen");
      return false;
    }
    g.listen_fds.push_back(fd);
    ev.data.u64 = kListener - i;
    epoll_ctl(g.ep, EPOLL_CTL_ADD, fd, &ev);
    ports += "port " + std::to_string(ntohs(a.sin_port)) + "\n";
  }

  nghttp2_session_callbacks_new(&g.cbs);
  nghttp2_session_callbacks_set_on_begin_headers_callback(g.cbs, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(g.cbs, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(g.cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(g.cbs, on_stream_close);
  std::fputs(ports.c_str(), stdout);
  std::fflush(stdout);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: sse_h2_server CA_PEM_OUT MAX_CONCURRENT_STREAMS...\n");
    return 2;
  }
  for (int i = 2; i < argc; ++i) g.max_streams.push_back(uint32_t(std::strtoul(argv[i], nullptr, 10)));
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, [](int) { g_stop = 1; });
  if (!setup(argv[1])) return 1;
  std::vector<epoll_event> evs(1024);
  while (!g_stop) {
    int timeout = -1;
    if (!g.timers.empty()) {
      const int64_t wait = g.timers.top().at - mono_ns();
      timeout = wait <= 0 ? 0 : int((wait + 999'999) / 1'000'000);
    }
    const int n = epoll_wait(g.ep, evs.data(), int(evs.size()), timeout);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      const uint64_t key = evs[i].data.u64;
      if (key == UINT64_MAX) {
        char b[64];
        if (::read(STDIN_FILENO, b, sizeof b) <= 0) g_stop = 1;
        continue;
      }
      if (key > kListener - g.listen_fds.size()) {
        accept_all(size_t(kListener - key));
        continue;
      }
      auto it = g.conns.find(key);
      if (it == g.conns.end()) continue;
      Conn& c = *it->second;
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
      if (evs[i].events & EPOLLOUT) mark(c);
    }
    fire_timers();
    for (Conn* c : g.pump_list) {
      c->dirty = false;
      pump_out(*c);
    }
    g.pump_list.clear();
    for (auto it = g.conns.begin(); it != g.conns.end();) {
      if (it->second->dead) it = g.conns.erase(it);
      else ++it;
    }
  }
  g.conns.clear();
  return 0;
}
