// The mock server's engine room: N worker threads, each an edge-triggered
// epoll loop over its own SO_REUSEPORT listener, non-blocking sockets with
// OpenSSL on plain socket BIOs, and one indexed min-heap of µs deadlines per
// worker (latency, drip, stream pacing, linger, idle) that sets the
// epoll_pwait2 timeout, so nothing ever sleeps per request.
#include "mock_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "fail_counter.hpp"
#include "http_request.hpp"
#include "request_json.hpp"
#include "responses.hpp"
#include "sse_stream.hpp"
#include "test_ca.hpp"

namespace barrage::mock {
namespace {

constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kReadBudget = 1024 * 1024;  // per drive() call, so one uploader cannot starve the rest
constexpr size_t kMaxBufferedWhileBusy = 256 * 1024;
constexpr size_t kMaxPendingOutput = 256 * 1024;
constexpr size_t kShrinkAbove = 64 * 1024;
constexpr uint64_t kLingerMs = 1000;
constexpr uint64_t kResetWaitMaxMs = 500;
constexpr uint64_t kResetPollMs = 2;
constexpr uint64_t kAcceptPauseMs = 100;
constexpr uint64_t kDefaultHugeBytes = 100ULL << 20;
constexpr uint32_t kDefaultDripMs = 10;
constexpr int kStreamEventsPerDrive = 64;  // then yield to other connections
constexpr size_t kFillerBytes = 65535;  // a multiple of 5, so "mock " repeats seamlessly
constexpr size_t kMaxEchoChars = 200;
constexpr uint64_t kStopTag = ~0ULL;
constexpr uint64_t kListenTag = ~0ULL - 1;
constexpr int kIoWouldBlock = -1;
constexpr int kIoEof = -2;
constexpr int kIoError = -3;

// The same clock in µs: timer deadlines, so that latency and stream pacing
// are not rounded to whole ms.
uint64_t now_us() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// Single-writer counters: each worker owns its stats, readers only load, so
// a plain load+store avoids a locked add on the hot path.
void bump(std::atomic<uint64_t>& a, uint64_t n = 1) {
  a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

enum class Fault : uint8_t {
  kNone, kResetBefore, kResetDuring, kStall, kDrip, kTruncate, kMalformed, kClose, kHuge, kUnknown
};

Fault parse_fault(std::string_view s) {
  if (s.empty()) return Fault::kNone;
  if (iequals(s, "reset-before")) return Fault::kResetBefore;
  if (iequals(s, "reset-during")) return Fault::kResetDuring;
  if (iequals(s, "stall")) return Fault::kStall;
  if (iequals(s, "drip")) return Fault::kDrip;
  if (iequals(s, "truncate")) return Fault::kTruncate;
  if (iequals(s, "malformed")) return Fault::kMalformed;
  if (iequals(s, "close")) return Fault::kClose;
  if (iequals(s, "huge")) return Fault::kHuge;
  return Fault::kUnknown;
}

enum class Route : uint8_t { kChat, kCompletions, kEmbeddings, kHealth, kNotFound, kBadMethod };

Route route_of(const HttpRequest& req) {
  std::string_view path = req.path();
  bool post = req.method == "POST";
  if (path == "/v1/chat/completions") return post ? Route::kChat : Route::kBadMethod;
  if (path == "/v1/completions") return post ? Route::kCompletions : Route::kBadMethod;
  if (path == "/v1/embeddings") return post ? Route::kEmbeddings : Route::kBadMethod;
  if (path == "/health") return Route::kHealth;
  return Route::kNotFound;
}

bool is_api(Route r) {
  return r == Route::kChat || r == Route::kCompletions || r == Route::kEmbeddings;
}

// Admission for limit_rps across all workers: 20 slots of 50 ms, each one
// atomic word holding (slot number << 24 | count), so a slot is recycled and
// counted in one compare-exchange without a lock. The window is the last
// 950-1000 ms; a check-then-add race can admit a few extra under contention,
// which a mock can afford.
class RateWindow {
 public:
  bool admit(uint64_t now, uint32_t limit) {
    uint64_t idx = now / kSlotMs;
    uint64_t sum = 0;
    for (uint64_t i = 0; i < kSlots && i <= idx; ++i) {
      uint64_t v = slots_[(idx - i) % kSlots].load(std::memory_order_relaxed);
      if ((v >> 24) == idx - i) sum += v & 0xFFFFFF;
    }
    if (sum >= limit) return false;
    std::atomic<uint64_t>& s = slots_[idx % kSlots];
    uint64_t v = s.load(std::memory_order_relaxed);
    for (;;) {
      uint64_t next = (v >> 24) == idx ? v + 1 : (idx << 24) | 1;
      if (s.compare_exchange_weak(v, next, std::memory_order_relaxed)) return true;
    }
  }

 private:
  static constexpr uint64_t kSlotMs = 50;
  static constexpr uint64_t kSlots = 20;
  std::array<std::atomic<uint64_t>, kSlots> slots_{};
};

int alpn_select(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
  // Only HTTP/1.1 is spoken; a client offering h2 first must still get it.
  for (unsigned int i = 0; i < inlen;) {
    unsigned int len = in[i];
    if (i + 1 + len > inlen) break;
    if (len == 8 && std::memcmp(in + i + 1, "http/1.1", 8) == 0) {
      *out = in + i + 1;
      *outlen = static_cast<unsigned char>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

std::string ssl_error_string(const char* what) {
  std::string s = what;
  unsigned long code = ERR_get_error();
  if (code != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    s += ": ";
    s += buf;
  }
  ERR_clear_error();
  return s;
}

SSL_CTX* make_ssl_ctx(const std::string& cert_pem, const std::string& key_pem, std::string* err) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) {
    *err = ssl_error_string("SSL_CTX_new");
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  // RELEASE_BUFFERS drops the 16 KiB record buffers of idle connections,
  // which is what lets 10k keep-alive connections fit in little memory.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Both resumption paths on, so a client's reuse is observable whichever
  // it uses: the stateful cache (TLS 1.2 session ids) and tickets.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  static const unsigned char kSidCtx[] = "barrage-mock";
  SSL_CTX_set_session_id_context(ctx, kSidCtx, sizeof kSidCtx - 1);
  SSL_CTX_set_num_tickets(ctx, 1);
  SSL_CTX_set_alpn_select_cb(ctx, alpn_select, nullptr);

  bool ok = false;
  BIO* bio = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  if (bio != nullptr) {
    X509* leaf = PEM_read_bio_X509_AUX(bio, nullptr, nullptr, nullptr);
    ok = leaf != nullptr && SSL_CTX_use_certificate(ctx, leaf) == 1;
    X509_free(leaf);
    while (ok) {
      X509* extra = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
      if (extra == nullptr) break;
      if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
        X509_free(extra);
        ok = false;
      }
    }
    ERR_clear_error();  // the chain loop ends on a "no start line" error
    BIO_free(bio);
  }
  if (!ok) {
    *err = ssl_error_string("loading the certificate PEM failed");
    SSL_CTX_free(ctx);
    return nullptr;
  }
  bio = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  EVP_PKEY* key = bio != nullptr ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(bio);
  ok = key != nullptr && SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
  EVP_PKEY_free(key);
  if (!ok) {
    *err = ssl_error_string("loading the private key PEM failed (or it does not match)");
    SSL_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

}  // namespace

// State every worker reads; written only before the threads start, except
// for the atomics.
struct SharedState {
  MockOptions opts;
  SSL_CTX* ssl_ctx = nullptr;
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> next_id{1};
  RateWindow rate_window;
  FailCounter fail_counter;
  std::string filler;  // kFillerBytes of "mock mock ..." for huge bodies
  // Cumulative fault thresholds for one uniform draw.
  double cum[8] = {};
  bool random_faults = false;

  ~SharedState() { SSL_CTX_free(ssl_ctx); }
};

namespace {

enum class Phase : uint8_t { kHandshake, kActive, kStall, kResetWait, kLinger, kClosed };
enum class After : uint8_t { kKeepAlive, kClose, kReset };
enum class Pending : uint8_t { kNone, kRespond, kResetBefore };

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;
  uint32_t slot = 0;
  uint32_t gen = 0;
  int32_t heap_idx = -1;  // position in the worker's timer heap, -1 when unarmed
  Phase phase = Phase::kClosed;
  After after = After::kKeepAlive;
  Pending pending = Pending::kNone;
  bool held = false;  // output waits for the timer (latency or drip)
  bool rd_ready = true;
  bool wr_ready = true;
  bool peer_eof = false;
  bool sent_continue = false;
  bool queued = false;  // on the worker's ready list
  uint32_t drip_ms = 0;
  uint32_t served = 0;
  uint64_t timer_at = 0;    // µs, steady clock
  uint64_t give_up_at = 0;  // reset-wait: RST even if the peer never ACKs
  uint64_t huge_left = 0;   // filler bytes of a huge body still to produce
  std::string in;
  size_t in_off = 0;
  std::string out;
  size_t out_off = 0;
  std::string tail;  // huge body's closing JSON, sent after the filler
  // A paced SSE answer still being written; its timer is this connection's
  // heap entry. Freed when the stream ends or the connection closes.
  std::unique_ptr<SseStream> sse;

  uint64_t key() const { return (static_cast<uint64_t>(gen) << 32) | slot; }
  bool output_done() const {
    return out_off == out.size() && huge_left == 0 && tail.empty() && !held && sse == nullptr;
  }
  // Nothing in flight: no response being delayed, produced or written.
  bool quiet() const {
    return phase == Phase::kActive && pending == Pending::kNone && output_done();
  }
};

struct WorkerStats {
  std::atomic<uint64_t> accepted{0}, closed{0}, requests{0}, resets{0}, stalls{0};
  std::atomic<uint64_t> handshakes{0}, resumed{0}, rate_limited{0}, bytes_in{0}, bytes_out{0};
  std::atomic<uint64_t> streams{0}, stream_tokens{0}, streams_cancelled{0};
  std::array<std::atomic<uint64_t>, 600> by_status{};
};

struct Plan {
  int status = 200;
  Fault fault = Fault::kNone;
  uint64_t delay_ms = 0;
  bool limited = false;
};

}  // namespace

class Worker {
 public:
  Worker(SharedState* sh, int index, int listen_fd)
      : sh_(sh), opts_(sh->opts), listen_fd_(listen_fd),
        rng_(sh->opts.seed + static_cast<uint64_t>(index)), read_buf_(new char[kReadChunk]) {}

  ~Worker() {
    close_all();
    if (ep_ >= 0) ::close(ep_);
  }

  bool init(int stop_fd, std::string* err) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) {
      *err = std::string("epoll_create1: ") + std::strerror(errno);
      return false;
    }
    // The listener and the stop eventfd are level-triggered: a listener
    // with a backlog left over must wake us again, and the never-drained
    // eventfd wakes every worker.
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenTag;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) {
      *err = std::string("epoll_ctl(listener): ") + std::strerror(errno);
      return false;
    }
    ev.data.u64 = kStopTag;
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, stop_fd, &ev) != 0) {
      *err = std::string("epoll_ctl(stop): ") + std::strerror(errno);
      return false;
    }
    return true;
  }

  void run() {
    // SIGPIPE from a write to a vanished peer stays pending on this thread
    // instead of killing the host process; the write still fails with EPIPE.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);

    epoll_event events[256];
    refresh_clock();
    while (!sh_->stopping.load(std::memory_order_acquire)) {
      int n = wait_events(events, 256);
      if (n < 0 && errno != EINTR) break;
      refresh_clock();
      unix_now_ = static_cast<int64_t>(std::time(nullptr));
      for (int i = 0; i < n; ++i) {
        uint64_t tag = events[i].data.u64;
        if (tag == kStopTag) continue;  // the loop condition sees it
        if (tag == kListenTag) {
          accept_all();
          continue;
        }
        Conn* c = lookup(tag);
        if (c == nullptr) continue;
        uint32_t e = events[i].events;
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c->rd_ready = true;
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) c->wr_ready = true;
        drive(c);
      }
      run_timers();
      run_ready_list();
      if (accept_paused_until_ != 0 && now_ >= accept_paused_until_) {
        accept_paused_until_ = 0;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = kListenTag;
        epoll_ctl(ep_, EPOLL_CTL_MOD, listen_fd_, &ev);
      }
    }
    close_all();
  }

  const WorkerStats& stats() const { return stats_; }

 private:
  // ---- connections ------------------------------------------------------

  Conn* lookup(uint64_t key) {
    uint32_t slot = static_cast<uint32_t>(key);
    if (slot >= conns_.size()) return nullptr;
    Conn* c = conns_[slot].get();
    return (c->gen == static_cast<uint32_t>(key >> 32) && c->phase != Phase::kClosed) ? c : nullptr;
  }

  Conn* alloc_conn() {
    uint32_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
    } else {
      slot = static_cast<uint32_t>(conns_.size());
      conns_.push_back(std::make_unique<Conn>());
      conns_.back()->slot = slot;
    }
    Conn* c = conns_[slot].get();
    c->gen = c->gen + 1 == 0xFFFFFFFFu ? 1 : c->gen + 1;
    c->phase = Phase::kActive;
    c->after = After::kKeepAlive;
    c->pending = Pending::kNone;
    c->held = c->peer_eof = c->sent_continue = c->queued = false;
    c->rd_ready = c->wr_ready = true;
    c->drip_ms = c->served = 0;
    c->timer_at = c->give_up_at = c->huge_left = 0;
    c->in.clear();
    c->out.clear();
    c->tail.clear();
    c->in_off = c->out_off = 0;
    return c;
  }

  void close_fd(Conn* c, bool reset) {
    if (c->phase == Phase::kClosed) return;
    if (reset) {
      // SO_LINGER {1, 0}: close() sends RST and drops unsent data.
      linger lg{1, 0};
      setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      bump(stats_.resets);
    }
    if (c->ssl != nullptr) {
      SSL_free(c->ssl);
      c->ssl = nullptr;
    }
    ::close(c->fd);
    c->fd = -1;
    c->phase = Phase::kClosed;
    timer_cancel(c);
    if (c->sse != nullptr) {
      // The client went away (or stop() runs) mid-stream.
      c->sse.reset();
      bump(stats_.streams_cancelled);
    }
    bump(stats_.closed);
  }

  // Returns a closed connection's slot for reuse. Bumping gen later (on
  // reuse) makes stale epoll events and ready-list entries miss.
  void release(Conn* c) {
    if (c->in.capacity() > kShrinkAbove) std::string().swap(c->in);
    if (c->out.capacity() > kShrinkAbove) std::string().swap(c->out);
    std::string().swap(c->tail);
    c->in.clear();
    c->out.clear();
    c->queued = false;
    free_.push_back(c->slot);
  }

  void close_all() {
    for (auto& c : conns_) {
      if (c->phase != Phase::kClosed) close_fd(c.get(), false);
    }
    heap_.clear();
  }

  void accept_all() {
    for (int i = 0; i < 64; ++i) {
      int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // Out of descriptors: a level-triggered listener would spin, so
          // mute it for a moment and let connections close meanwhile.
          epoll_event ev{};
          ev.data.u64 = kListenTag;
          epoll_ctl(ep_, EPOLL_CTL_MOD, listen_fd_, &ev);
          accept_paused_until_ = now_ + kAcceptPauseMs;
        }
        return;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      Conn* c = alloc_conn();
      c->fd = fd;
      if (sh_->ssl_ctx != nullptr) {
        c->ssl = SSL_new(sh_->ssl_ctx);
        if (c->ssl == nullptr || SSL_set_fd(c->ssl, fd) != 1) {
          ERR_clear_error();
          close_fd(c, false);
          release(c);
          continue;
        }
        SSL_set_accept_state(c->ssl);
        c->phase = Phase::kHandshake;
      }
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      ev.data.u64 = c->key();
      if (epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close_fd(c, false);
        release(c);
        continue;
      }
      bump(stats_.accepted);
    }
  }

  // ---- I/O --------------------------------------------------------------

  int io_read(Conn* c, char* buf, size_t len) {
    // Once lingering, TLS is finished: remaining input is drained raw.
    if (c->ssl != nullptr && c->phase != Phase::kLinger) {
      ERR_clear_error();
      int r = SSL_read(c->ssl, buf, static_cast<int>(len));
      if (r > 0) return r;
      switch (SSL_get_error(c->ssl, r)) {
        case SSL_ERROR_WANT_READ:
          c->rd_ready = false;
          return kIoWouldBlock;
        case SSL_ERROR_WANT_WRITE:
          return kIoWouldBlock;  // EPOLLOUT will drive us again
        case SSL_ERROR_ZERO_RETURN:
          return kIoEof;
        default:
          ERR_clear_error();
          return kIoError;
      }
    }
    for (;;) {
      ssize_t r = ::recv(c->fd, buf, len, 0);
      if (r > 0) return static_cast<int>(r);
      if (r == 0) return kIoEof;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c->rd_ready = false;
        return kIoWouldBlock;
      }
      return kIoError;
    }
  }

  int io_write(Conn* c, const char* buf, size_t len) {
    if (len > (1u << 30)) len = 1u << 30;
    if (c->ssl != nullptr) {
      ERR_clear_error();
      int r = SSL_write(c->ssl, buf, static_cast<int>(len));
      if (r > 0) return r;
      switch (SSL_get_error(c->ssl, r)) {
        case SSL_ERROR_WANT_WRITE:
          c->wr_ready = false;
          return kIoWouldBlock;
        case SSL_ERROR_WANT_READ:
          return kIoWouldBlock;
        default:
          ERR_clear_error();
          return kIoError;
      }
    }
    for (;;) {
      ssize_t r = ::send(c->fd, buf, len, MSG_NOSIGNAL);
      if (r >= 0) return static_cast<int>(r);
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c->wr_ready = false;
        return kIoWouldBlock;
      }
      return kIoError;
    }
  }

  bool can_process(const Conn* c) const {
    return c->phase == Phase::kActive && !c->held && c->pending == Pending::kNone &&
           c->after == After::kKeepAlive && c->sse == nullptr;
  }

  bool wants_read(const Conn* c) const {
    if (c->peer_eof) return false;
    switch (c->phase) {
      case Phase::kStall:
      case Phase::kLinger:
        return true;  // read to discard (and to notice the close)
      case Phase::kActive: {
        size_t buffered = c->in.size() - c->in_off;
        // While a request is being parsed, the parser's own limits bound
        // the buffer; while busy, stop reading so a pipelining client feels
        // back-pressure instead of growing our memory.
        size_t cap = can_process(c) ? kMaxHeaderBytes + kMaxBodyBytes + kReadChunk
                                    : kMaxBufferedWhileBusy;
        return buffered < cap;
      }
      default:
        return false;
    }
  }

  // Reads until EAGAIN, EOF, the budget or the buffer cap. Returns whether
  // any byte arrived.
  bool read_some(Conn* c, size_t* budget) {
    bool got = false;
    while (wants_read(c) && c->rd_ready && *budget > 0) {
      int r = io_read(c, read_buf_.get(), std::min(kReadChunk, *budget));
      if (r > 0) {
        size_t n = static_cast<size_t>(r);
        *budget -= n;
        bump(stats_.bytes_in, n);
        got = true;
        if (c->phase == Phase::kActive) c->in.append(read_buf_.get(), n);
        continue;
      }
      if (r == kIoEof) {
        c->peer_eof = true;
        got = true;
      } else if (r == kIoError) {
        close_fd(c, false);
      }
      break;
    }
    return got;
  }

  // Next output bytes of a huge body, produced as the socket drains so a
  // 100 MiB answer never sits in memory.
  bool refill(Conn* c) {
    if (c->huge_left > 0) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kFillerBytes, c->huge_left));
      c->out.assign(sh_->filler.data(), n);
      c->out_off = 0;
      c->huge_left -= n;
      return true;
    }
    if (!c->tail.empty()) {
      c->out.swap(c->tail);
      c->tail.clear();
      c->out_off = 0;
      return true;
    }
    return false;
  }

  bool flush(Conn* c) {
    bool progress = false;
    while (c->phase == Phase::kActive && !c->held && c->wr_ready) {
      if (c->out_off == c->out.size() && !refill(c)) break;
      size_t len = c->out.size() - c->out_off;
      if (c->drip_ms != 0) len = 1;
      int r = io_write(c, c->out.data() + c->out_off, len);
      if (r > 0) {
        c->out_off += static_cast<size_t>(r);
        bump(stats_.bytes_out, static_cast<uint64_t>(r));
        progress = true;
        if (c->drip_ms != 0 && (c->out_off < c->out.size() || c->huge_left > 0 || !c->tail.empty())) {
          c->held = true;
          timer_arm(c, now_ + c->drip_ms);
        }
        continue;
      }
      if (r == kIoError) close_fd(c, false);
      break;
    }
    if (c->phase == Phase::kActive && c->out_off == c->out.size() && c->out_off != 0) {
      c->out.clear();
      c->out_off = 0;
    }
    return progress;
  }

  // ---- paced SSE streams --------------------------------------------------

  // Writes the stream's next event once everything before it has left the
  // buffer (so a slow reader holds us back instead of growing memory) and
  // its planned time has come; otherwise arms the timer for that time.
  // At most *events tokens per drive(), then the connection requeues itself
  // so an interval-0 stream cannot starve the worker's other connections.
  bool pump(Conn* c, int* events) {
    SseStream* s = c->sse.get();
    if (s == nullptr || c->phase != Phase::kActive || c->held || c->out_off != c->out.size()) {
      return false;
    }
    // The schedule starts when the headers and opening event have been
    // handed to the socket, i.e. after any latency and any earlier answers.
    if (!s->started()) s->start(now_us());
    switch (s->next()) {
      case SseStream::Next::kStall:
        end_stream(c);
        bump(stats_.stalls);
        c->phase = Phase::kStall;  // swallow input until the client closes
        c->in.clear();
        c->in_off = 0;
        return true;
      case SseStream::Next::kReset:
        end_stream(c);
        c->after = After::kReset;  // after_output() waits for the ACK, then RSTs
        return true;
      case SseStream::Next::kTail:
        s->append_tail(c->out, tmp_);
        end_stream(c);
        return true;
      case SseStream::Next::kToken:
        break;
    }
    // The loop's clock reading may predate this turn's work; look again
    // before deciding an event must wait for the next turn.
    if (s->due_us() > now_us_) refresh_clock();
    if (s->due_us() > now_us_) {
      timer_arm_us(c, s->due_us());
      return false;
    }
    if (*events == 0) {
      if (!c->queued) {
        c->queued = true;
        ready_.push_back(c->key());
      }
      return false;
    }
    --*events;
    s->append_token(c->out, tmp_);
    bump(stats_.stream_tokens);
    return true;
  }

  void end_stream(Conn* c) {
    c->sse.reset();
    timer_cancel(c);
  }

  // ---- connection state machine -----------------------------------------

  void drive(Conn* c) {
    size_t budget = kReadBudget;
    int events = kStreamEventsPerDrive;
    for (;;) {
      bool progress = false;
      if (c->phase == Phase::kHandshake) {
        if (!handshake(c)) break;
        progress = true;
      }
      if (c->rd_ready && wants_read(c)) {
        progress |= read_some(c, &budget);
        if (c->phase == Phase::kClosed) break;
        if (budget == 0 && c->rd_ready && !c->queued) {
          c->queued = true;
          ready_.push_back(c->key());
        }
      }
      if (can_process(c)) progress |= process(c);
      if (c->phase == Phase::kClosed) break;
      progress |= pump(c, &events);
      progress |= flush(c);
      if (c->phase == Phase::kClosed) break;
      if (c->phase == Phase::kActive && c->output_done() && c->pending == Pending::kNone) {
        progress |= after_output(c);
        if (c->phase == Phase::kClosed) break;
      }
      if (c->phase == Phase::kResetWait) {
        check_reset(c);
        break;
      }
      if (!progress || budget == 0) break;
    }
    finish_drive(c);
  }

  void finish_drive(Conn* c) {
    if (c->phase == Phase::kActive && c->peer_eof && c->sse != nullptr) {
      // EOF mid-stream is a client that gave up on the answer (an aborted
      // stream); writing on would only meet its RST a few events later.
      close_fd(c, false);
    }
    if (c->phase != Phase::kClosed && c->peer_eof) {
      // The peer is gone (or half-closed): finish what is in flight, then
      // close. Stalled and lingering connections end here too.
      bool done = c->phase == Phase::kStall || c->phase == Phase::kLinger ||
                  c->phase == Phase::kHandshake || c->quiet();
      if (done) close_fd(c, false);
    }
    if (c->phase == Phase::kClosed) {
      release(c);
      return;
    }
    if (c->quiet() && c->in_off == c->in.size()) {
      if (c->in.capacity() > kShrinkAbove) std::string().swap(c->in);
      if (c->out.capacity() > kShrinkAbove) std::string().swap(c->out);
      if (opts_.idle_timeout_ms != 0 && c->heap_idx < 0) {
        timer_arm(c, now_ + opts_.idle_timeout_ms);
      }
    }
  }

  bool handshake(Conn* c) {
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
      c->phase = Phase::kActive;
      // The handshake's last read may have pulled in application data that
      // now sits inside SSL; edge-triggered epoll will not report it again.
      c->rd_ready = true;
      bump(stats_.handshakes);
      if (SSL_session_reused(c->ssl)) bump(stats_.resumed);
      return true;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      if (e == SSL_ERROR_WANT_READ) c->rd_ready = false;
      return false;
    }
    ERR_clear_error();
    close_fd(c, false);
    return false;
  }

  // What happens once a response has been written completely.
  bool after_output(Conn* c) {
    switch (c->after) {
      case After::kKeepAlive:
        c->drip_ms = 0;
        return false;
      case After::kClose:
        begin_linger(c);
        return true;
      case After::kReset:
        c->phase = Phase::kResetWait;
        c->give_up_at = now_ + kResetWaitMaxMs;
        return true;
    }
    return false;
  }

  // Graceful close: close_notify and FIN, then drain the peer's input for a
  // while. Closing with unread input would make the kernel send RST, which
  // can destroy the response we just wrote before the peer reads it.
  void begin_linger(Conn* c) {
    if (c->ssl != nullptr) {
      ERR_clear_error();
      SSL_shutdown(c->ssl);
      ERR_clear_error();
    }
    ::shutdown(c->fd, SHUT_WR);
    c->phase = Phase::kLinger;
    c->in.clear();
    c->in_off = 0;
    timer_arm(c, now_ + kLingerMs);
  }

  // reset-during: RST only once the peer has ACKed the partial response
  // (SIOCOUTQ counts unacknowledged bytes), else the RST would discard it
  // and the client would see a reset-before.
  void check_reset(Conn* c) {
    int unacked = 0;
    if (ioctl(c->fd, SIOCOUTQ, &unacked) != 0 || unacked == 0 || now_ >= c->give_up_at) {
      close_fd(c, true);
      return;
    }
    timer_arm(c, now_ + kResetPollMs);
  }

  void on_timer(Conn* c) {
    switch (c->phase) {
      case Phase::kLinger:
        close_fd(c, false);
        release(c);
        return;
      case Phase::kResetWait:
        check_reset(c);
        if (c->phase == Phase::kClosed) release(c);
        return;
      case Phase::kActive:
        if (c->held) {
          c->held = false;
          if (c->pending == Pending::kResetBefore) {
            close_fd(c, true);
            release(c);
            return;
          }
          c->pending = Pending::kNone;
          drive(c);
          return;
        }
        if (c->sse != nullptr) {
          drive(c);  // the next stream event is due
          return;
        }
        if (c->quiet() && c->in_off == c->in.size()) {
          begin_linger(c);  // idle timeout
          finish_drive(c);
        }
        return;
      default:
        return;
    }
  }

  // ---- requests -----------------------------------------------------------

  bool process(Conn* c) {
    bool progress = false;
    while (can_process(c) && c->out.size() - c->out_off < kMaxPendingOutput) {
      std::string_view avail(c->in.data() + c->in_off, c->in.size() - c->in_off);
      if (avail.empty()) break;
      HttpRequest req;
      ParseResult pr = parse_request(avail, &req, &chunk_buf_);
      if (pr.status == ParseStatus::kIncomplete) {
        if (pr.headers_done && req.expect_continue && !c->sent_continue) {
          c->out += "HTTP/1.1 100 Continue\r\n\r\n";
          c->sent_continue = true;
          progress = true;
        }
        break;
      }
      if (timer_armed(c)) timer_cancel(c);  // an idle timer; the connection is busy now
      if (pr.status == ParseStatus::kError) {
        // Framing is lost: answer, then close, ignoring whatever follows.
        bump(stats_.requests);
        error_response(c, pr.error_status, pr.error, true);
        c->after = After::kClose;
        c->in_off = c->in.size();
        progress = true;
        break;
      }
      bool pipelined_output = c->out_off != c->out.size();
      // Delays and faults act on this response alone, so earlier answers
      // must be fully written first; parsing again later is cheap.
      if (pipelined_output && (req.has_mock_controls() || sh_->random_faults ||
                               opts_.latency_ms != 0 || opts_.latency_jitter_ms != 0)) {
        break;
      }
      bump(stats_.requests);
      c->sent_continue = false;
      Route route = route_of(req);
      Plan plan = make_plan(req, route);
      if (plan.fault == Fault::kUnknown) {
        error_response(c, 400, "unknown x-mock-fault value", !req.keep_alive);
      } else {
        execute(c, req, route, plan);
      }
      if (c->phase != Phase::kActive) {
        // Closed, or stalled: whatever else was sent is never looked at.
        c->in.clear();
        c->in_off = 0;
        return true;
      }
      c->in_off += pr.consumed;
      progress = true;
    }
    if (c->in_off == c->in.size()) {
      c->in.clear();
      c->in_off = 0;
    } else if (c->in_off > kShrinkAbove || c->in_off * 2 > c->in.size()) {
      c->in.erase(0, c->in_off);
      c->in_off = 0;
    }
    return progress;
  }

  double uniform() { return static_cast<double>(splitmix64(rng_) >> 11) / static_cast<double>(1ULL << 53); }

  Plan make_plan(const HttpRequest& req, Route route) {
    Plan p;
    bool api = is_api(route);
    if (api && opts_.limit_rps != 0 && !sh_->rate_window.admit(now_, opts_.limit_rps)) {
      // Over the limit: answered at once, like a real gateway would.
      p.status = 429;
      p.limited = true;
      bump(stats_.rate_limited);
      return p;
    }
    uint64_t v = 0;
    if (!req.mock_latency_ms.empty() && parse_u64(req.mock_latency_ms, &v)) {
      p.delay_ms = v;
    } else if (api) {
      p.delay_ms = opts_.latency_ms;
      if (opts_.latency_jitter_ms != 0) p.delay_ms += splitmix64(rng_) % (opts_.latency_jitter_ms + 1ULL);
    }
    int mock_status = 0;
    if (!req.mock_status.empty() && parse_u64(req.mock_status, &v) && v >= 100 && v <= 599) {
      mock_status = static_cast<int>(v);
    }
    Fault mock_fault = parse_fault(req.mock_fault);
    if (!req.mock_fail_times.empty()) {
      // Only the first N requests with this key get the status (429 unless
      // given) or fault; later ones are answered normally.
      uint64_t times = 0;
      if (!parse_u64(req.mock_fail_times, &times) ||
          !sh_->fail_counter.should_fail(req.mock_fail_key, times)) {
        mock_status = 0;
        mock_fault = Fault::kNone;
      } else if (mock_status == 0 && mock_fault == Fault::kNone) {
        mock_status = 429;
      }
    }
    if (mock_status != 0) p.status = mock_status;
    p.fault = mock_fault;
    if (api && sh_->random_faults && req.mock_status.empty() && req.mock_fault.empty()) {
      double r = uniform();
      static constexpr Fault kOrder[8] = {Fault::kNone,       Fault::kNone,     Fault::kNone,
                                          Fault::kResetBefore, Fault::kResetDuring, Fault::kStall,
                                          Fault::kTruncate,   Fault::kMalformed};
      static constexpr int kStatus[3] = {429, 500, 503};
      for (int i = 0; i < 8; ++i) {
        if (r < sh_->cum[i]) {
          if (i < 3) p.status = kStatus[i];
          else p.fault = kOrder[i];
          break;
        }
      }
    }
    return p;
  }

  void execute(Conn* c, const HttpRequest& req, Route route, const Plan& plan) {
    if (plan.fault == Fault::kStall) {
      bump(stats_.stalls);
      c->phase = Phase::kStall;
      return;
    }
    if (plan.fault == Fault::kResetBefore) {
      if (plan.delay_ms == 0) {
        close_fd(c, true);
        return;
      }
      c->held = true;
      c->pending = Pending::kResetBefore;
      timer_arm_us(c, latency_deadline_us(plan.delay_ms));
      return;
    }

    bool close = !req.keep_alive || plan.fault == Fault::kClose ||
                 plan.fault == Fault::kTruncate || plan.fault == Fault::kMalformed ||
                 plan.fault == Fault::kResetDuring;
    ++c->served;
    if (opts_.keepalive_requests != 0 && c->served >= opts_.keepalive_requests) close = true;
    uint64_t id = sh_->next_id.fetch_add(1, std::memory_order_relaxed);

    size_t head_start = c->out.size();
    size_t body_len = 0;
    if (plan.fault == Fault::kHuge) {
      build_huge(c, req, id, close, plan);
    } else {
      bool paced = plan.fault == Fault::kNone || plan.fault == Fault::kClose;
      body_len = build_response(c, req, route, plan, id, close, paced);
    }
    size_t body_start = c->out.size() - body_len;

    switch (plan.fault) {
      case Fault::kResetDuring:
        c->out.resize(body_start + body_len / 2);
        c->after = After::kReset;
        break;
      case Fault::kTruncate:
        c->out.resize(body_start + body_len / 2);
        break;
      case Fault::kMalformed: {
        // A status line without a status code, then the usual rest.
        size_t eol = c->out.find("\r\n", head_start);
        c->out.replace(head_start, eol - head_start, "HTTP/1.1 OK");
        break;
      }
      case Fault::kDrip: {
        uint64_t ms = kDefaultDripMs;
        if (!req.mock_drip_ms.empty()) parse_u64(req.mock_drip_ms, &ms);
        c->drip_ms = static_cast<uint32_t>(std::clamp<uint64_t>(ms, 1, 60000));
        break;
      }
      default:
        break;
    }
    if (close && c->after == After::kKeepAlive) c->after = After::kClose;
    if (plan.delay_ms != 0) {
      c->held = true;
      c->pending = Pending::kRespond;
      timer_arm_us(c, latency_deadline_us(plan.delay_ms));
    }
  }

  void append_head(Conn* c, int status, std::string_view content_type, uint64_t length,
                   bool chunked, uint64_t id, bool close, const HttpRequest* req,
                   const Plan* plan) {
    std::string& o = c->out;
    o += "HTTP/1.1 ";
    append_u64(o, static_cast<uint64_t>(status));
    o += ' ';
    o += reason_phrase(status);
    o += "\r\ncontent-type: ";
    o += content_type;
    if (chunked) {
      o += "\r\ntransfer-encoding: chunked";
    } else {
      o += "\r\ncontent-length: ";
      append_u64(o, length);
    }
    o += "\r\nx-request-id: req_";
    append_u64(o, id);
    if (plan != nullptr) {
      o += "\r\nopenai-processing-ms: ";
      append_u64(o, plan->delay_ms);
    }
    bool explicit_ra = req != nullptr && !req->mock_retry_after.empty();
    if (plan != nullptr && plan->limited) {
      o += "\r\nretry-after: 1";
    } else if (explicit_ra) {
      o += "\r\nretry-after: ";
      o += req->mock_retry_after;
    } else if (status == 429 || status == 503) {
      o += "\r\nretry-after: ";
      append_u64(o, opts_.retry_after_s);
    }
    if (req != nullptr && !req->mock_ratelimit_reset_requests.empty()) {
      o += "\r\nx-ratelimit-remaining-requests: 0\r\nx-ratelimit-reset-requests: ";
      o += req->mock_ratelimit_reset_requests;
    }
    if (req != nullptr && !req->mock_retry_after_ms.empty()) {
      o += "\r\nretry-after-ms: ";
      o += req->mock_retry_after_ms;
    }
    if (close) {
      o += "\r\nconnection: close";
    } else if (req != nullptr && req->minor_version == 0) {
      o += "\r\nconnection: keep-alive";
    }
    o += "\r\n\r\n";
    if (status >= 0 && status < 600) bump(stats_.by_status[static_cast<size_t>(status)]);
  }

  void error_response(Conn* c, int status, std::string_view message, bool close) {
    body_.clear();
    ErrorShape shape = error_shape(status);
    append_error_body(body_, message.empty() ? shape.message : message, shape.type, shape.code);
    uint64_t id = sh_->next_id.fetch_add(1, std::memory_order_relaxed);
    append_head(c, status, "application/json", body_.size(), false, id, close, nullptr, nullptr);
    c->out += body_;
    if (close) c->after = After::kClose;
  }

  // The answer's text: which request it answers (its size) and an echo of
  // what was asked, so a client can tell its answers apart.
  void make_content(size_t body_bytes) {
    content_.assign("mock answer to ");
    append_u64(content_, body_bytes);
    content_ += " bytes";
    if (fields_.has_text) {
      content_ += ": ";
      content_ += utf8_prefix(fields_.last_text, kMaxEchoChars);
    }
  }

  // Appends head and body; returns the body length.
  // `paced`: a streaming answer is written event by event (c->sse) rather
  // than all at once, which faults that cut or drip the body cannot use.
  size_t build_response(Conn* c, const HttpRequest& req, Route route, const Plan& plan,
                        uint64_t id, bool close, bool paced) {
    body_.clear();
    int status = plan.status;
    std::string_view content_type = "application/json";
    bool chunked = false;
    if (status >= 200 && status < 300) {
      switch (route) {
        case Route::kHealth:
          body_ = "ok";
          content_type = "text/plain";
          break;
        case Route::kNotFound:
        case Route::kBadMethod: {
          status = route == Route::kNotFound ? 404 : 405;
          tmp_.assign(route == Route::kNotFound ? "Unknown request URL: " : "Method not allowed: ");
          tmp_ += req.method;
          tmp_ += ' ';
          tmp_ += req.path();
          tmp_ += '.';
          ErrorShape shape = error_shape(status);
          append_error_body(body_, tmp_, shape.type, shape.code);
          break;
        }
        default: {
          if (!scan_request_json(req.body, &fields_)) {
            status = 400;
            append_error_body(body_,
                              "We could not parse the JSON body of your request. (mock: the "
                              "body must be one JSON object)",
                              "invalid_request_error", "");
            break;
          }
          Answer a;
          a.id = id;
          a.created = unix_now_;
          a.model = fields_.model;
          a.prompt_tokens = (req.body.size() + 3) / 4;
          if (route == Route::kEmbeddings) {
            append_embeddings_body(body_, a.model, fields_.input_hashes, a.prompt_tokens);
            break;
          }
          make_content(req.body.size());
          a.content = content_;
          a.completion_tokens = count_words(content_);
          if (fields_.stream && paced) {
            c->sse = std::make_unique<SseStream>(a, route == Route::kChat, fields_.include_usage,
                                                 stream_controls(opts_, req));
            c->sse->append_opening(body_, tmp_);
            bump(stats_.streams);
            content_type = "text/event-stream";
            chunked = true;
          } else if (fields_.stream) {
            append_sse_stream(body_, a, route == Route::kChat, fields_.include_usage, tmp_);
            content_type = "text/event-stream";
            chunked = true;
          } else if (route == Route::kChat) {
            append_chat_body(body_, a);
          } else {
            append_completion_body(body_, a);
          }
        }
      }
    } else {
      ErrorShape shape = error_shape(status);
      append_error_body(body_, shape.message, shape.type, shape.code);
    }
    append_head(c, status, content_type, body_.size(), chunked, id, close, &req, &plan);
    if (req.method == "HEAD") return 0;
    c->out += body_;
    return body_.size();
  }

  // A valid chat.completion of exactly the requested size (or the smallest
  // valid one when that is less), with "mock " filler as its content,
  // produced by refill() as the socket drains.
  void build_huge(Conn* c, const HttpRequest& req, uint64_t id, bool close, const Plan& plan) {
    uint64_t total = kDefaultHugeBytes;
    if (!req.mock_huge_bytes.empty()) parse_u64(req.mock_huge_bytes, &total);
    if (!scan_request_json(req.body, &fields_)) fields_.clear();
    Answer a;
    a.id = id;
    a.created = unix_now_;
    a.model = fields_.model;
    a.prompt_tokens = (req.body.size() + 3) / 4;
    body_.clear();
    append_chat_prefix(body_, a);
    size_t prefix = body_.size();
    uint64_t filler = 0;
    // The suffix's length depends on the word count, which depends on the
    // filler length: iterate to the fixed point (two rounds in practice).
    for (int round = 0; round < 8; ++round) {
      a.completion_tokens = (filler + 4) / 5;
      tmp_.clear();
      append_chat_suffix(tmp_, a);
      uint64_t fixed = prefix + tmp_.size();
      uint64_t next = total > fixed ? total - fixed : 0;
      if (next == filler) break;
      filler = next;
    }
    a.completion_tokens = (filler + 4) / 5;
    tmp_.clear();
    append_chat_suffix(tmp_, a);
    append_head(c, 200, "application/json", prefix + filler + tmp_.size(), false, id, close,
                &req, &plan);
    c->out += body_;
    c->huge_left = filler;
    c->tail = tmp_;
  }

  // ---- timers: an indexed binary min-heap, one entry per connection -------

  // Measured from a fresh clock reading, not the loop's cached one: the
  // request may have arrived while this turn was busy (say, in a TLS
  // handshake). So at least `delay` ms really pass, which is what clients
  // test for, and in µs not much more.
  uint64_t latency_deadline_us(uint64_t delay_ms) const { return now_us() + delay_ms * 1000; }

  void refresh_clock() {
    now_us_ = now_us();
    now_ = now_us_ / 1000;
  }

  bool timer_armed(const Conn* c) const { return c->heap_idx >= 0; }

  // Deadline in whole ms of the loop's clock (the first instant now_ reads it).
  void timer_arm(Conn* c, uint64_t at_ms) { timer_arm_us(c, at_ms * 1000); }

  void timer_arm_us(Conn* c, uint64_t at) {
    c->timer_at = at;
    if (c->heap_idx < 0) {
      c->heap_idx = static_cast<int32_t>(heap_.size());
      heap_.push_back(c);
    }
    sift_up(static_cast<size_t>(c->heap_idx));
    sift_down(static_cast<size_t>(c->heap_idx));
  }

  void timer_cancel(Conn* c) {
    if (c->heap_idx < 0) return;
    size_t i = static_cast<size_t>(c->heap_idx);
    c->heap_idx = -1;
    c->timer_at = 0;
    Conn* last = heap_.back();
    heap_.pop_back();
    if (last == c) return;
    heap_[i] = last;
    last->heap_idx = static_cast<int32_t>(i);
    sift_up(i);
    sift_down(static_cast<size_t>(last->heap_idx));
  }

  void heap_swap(size_t a, size_t b) {
    std::swap(heap_[a], heap_[b]);
    heap_[a]->heap_idx = static_cast<int32_t>(a);
    heap_[b]->heap_idx = static_cast<int32_t>(b);
  }

  void sift_up(size_t i) {
    while (i > 0) {
      size_t parent = (i - 1) / 2;
      if (heap_[parent]->timer_at <= heap_[i]->timer_at) break;
      heap_swap(parent, i);
      i = parent;
    }
  }

  void sift_down(size_t i) {
    for (;;) {
      size_t l = 2 * i + 1, r = l + 1, m = i;
      if (l < heap_.size() && heap_[l]->timer_at < heap_[m]->timer_at) m = l;
      if (r < heap_.size() && heap_[r]->timer_at < heap_[m]->timer_at) m = r;
      if (m == i) return;
      heap_swap(i, m);
      i = m;
    }
  }

  void run_timers() {
    while (!heap_.empty() && heap_.front()->timer_at <= now_us_) {
      Conn* c = heap_.front();
      timer_cancel(c);
      on_timer(c);
    }
  }

  void run_ready_list() {
    if (ready_.empty()) return;
    std::vector<uint64_t> batch;
    batch.swap(ready_);
    for (uint64_t key : batch) {
      Conn* c = lookup(key);
      if (c == nullptr) continue;
      c->queued = false;
      drive(c);
    }
  }

  // µs until the next deadline, -1 for none.
  int64_t next_wait_us() {
    if (!ready_.empty()) return 0;
    uint64_t next = heap_.empty() ? 0 : heap_.front()->timer_at;
    uint64_t paused = accept_paused_until_ * 1000;
    if (paused != 0 && (next == 0 || paused < next)) next = paused;
    if (next == 0) return -1;
    uint64_t now = now_us();
    if (next <= now) return 0;
    return static_cast<int64_t>(std::min<uint64_t>(next - now, 60'000'000));
  }

  // epoll_wait takes whole ms, so a deadline could be missed by up to 1 ms
  // (or, rounding down, be woken for too early and spin); epoll_pwait2
  // (Linux 5.11) takes ns and wakes within the kernel's timer slack. Where
  // it is missing or filtered out, fall back to ms rounded up.
  int wait_events(epoll_event* events, int max) {
    int64_t wait = next_wait_us();
    if (have_pwait2_) {
      timespec ts{static_cast<time_t>(wait / 1000000), static_cast<long>(wait % 1000000) * 1000};
      int n = epoll_pwait2(ep_, events, max, wait < 0 ? nullptr : &ts, nullptr);
      if (n >= 0 || (errno != ENOSYS && errno != EPERM)) return n;
      have_pwait2_ = false;
    }
    return epoll_wait(ep_, events, max, wait < 0 ? -1 : static_cast<int>((wait + 999) / 1000));
  }

  SharedState* sh_;
  const MockOptions& opts_;
  int listen_fd_;
  int ep_ = -1;
  uint64_t rng_;
  uint64_t now_ = 0;     // ms, the loop's clock reading
  uint64_t now_us_ = 0;  // the same reading in µs
  bool have_pwait2_ = true;
  int64_t unix_now_ = static_cast<int64_t>(std::time(nullptr));
  uint64_t accept_paused_until_ = 0;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<uint32_t> free_;
  std::vector<Conn*> heap_;
  std::vector<uint64_t> ready_;
  std::unique_ptr<char[]> read_buf_;
  // Scratch reused by every request on this worker.
  std::string chunk_buf_, body_, content_, tmp_;
  RequestFields fields_;
  WorkerStats stats_;
};

// ---- MockServer -------------------------------------------------------------

uint64_t MockStats::responses() const {
  uint64_t n = 0;
  for (uint64_t v : responses_by_status) n += v;
  return n;
}

MockServer::MockServer() = default;

MockServer::~MockServer() {
  stop();
  workers_.clear();
  for (int fd : listen_fds_) ::close(fd);
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

std::unique_ptr<MockServer> MockServer::start(const MockOptions& opts, std::string* err) {
  std::string local_err;
  if (err == nullptr) err = &local_err;
  if (opts.threads < 1 || opts.threads > 256) {
    *err = "threads must be in 1..256";
    return nullptr;
  }
  const double rates[8] = {opts.rate_429,          opts.rate_500,          opts.rate_503,
                           opts.rate_reset_before, opts.rate_reset_during, opts.rate_stall,
                           opts.rate_truncate,     opts.rate_malformed};
  double sum = 0;
  for (double r : rates) {
    if (!(r >= 0 && r <= 1)) {
      *err = "fault rates must be within 0..1";
      return nullptr;
    }
    sum += r;
  }
  if (sum > 1.0 + 1e-9) {
    *err = "fault rates add up to more than 1";
    return nullptr;
  }

  std::unique_ptr<MockServer> s(new MockServer());
  s->opts_ = opts;
  s->shared_ = std::make_unique<SharedState>();
  SharedState& sh = *s->shared_;
  sh.opts = opts;
  double acc = 0;
  for (int i = 0; i < 8; ++i) {
    acc += rates[i];
    sh.cum[i] = acc;
  }
  sh.random_faults = sum > 0;
  sh.filler.reserve(kFillerBytes);
  while (sh.filler.size() < kFillerBytes) sh.filler += "mock ";

  if (opts.tls) {
    std::string cert = opts.cert_pem, key = opts.key_pem;
    if (cert.empty()) {
      CertBundle b = make_localhost_bundle(err);
      if (!b.ok()) return nullptr;
      cert = b.cert_pem;
      key = b.key_pem;
      s->ca_pem_ = b.ca_pem;
    }
    sh.ssl_ctx = make_ssl_ctx(cert, key, err);
    if (sh.ssl_ctx == nullptr) return nullptr;
  }

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port_str = std::to_string(opts.port);
  int gai = getaddrinfo(opts.host.empty() ? nullptr : opts.host.c_str(), port_str.c_str(),
                        &hints, &res);
  if (gai != 0 || res == nullptr) {
    *err = "cannot resolve host \"" + opts.host + "\": " + gai_strerror(gai);
    return nullptr;
  }
  sockaddr_storage addr{};
  std::memcpy(&addr, res->ai_addr, res->ai_addrlen);
  socklen_t addr_len = res->ai_addrlen;
  int family = res->ai_family;
  freeaddrinfo(res);

  // One listener per worker on the same port (SO_REUSEPORT): the kernel
  // spreads connections by hash, so workers never contend for accept().
  for (int i = 0; i < opts.threads; ++i) {
    int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      *err = std::string("socket: ") + std::strerror(errno);
      return nullptr;
    }
    s->listen_fds_.push_back(fd);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (opts.threads > 1) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (i > 0) {
      // Later listeners join the port the first one got.
      if (family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port = htons(s->port_);
      else reinterpret_cast<sockaddr_in*>(&addr)->sin_port = htons(s->port_);
    }
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0) {
      *err = "bind " + opts.host + ":" + std::to_string(i == 0 ? opts.port : s->port_) + ": " +
             std::strerror(errno);
      return nullptr;
    }
    if (::listen(fd, 4096) != 0) {
      *err = std::string("listen: ") + std::strerror(errno);
      return nullptr;
    }
    if (i == 0) {
      sockaddr_storage bound{};
      socklen_t len = sizeof bound;
      getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
      s->port_ = ntohs(family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                          : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    }
  }

  s->stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (s->stop_fd_ < 0) {
    *err = std::string("eventfd: ") + std::strerror(errno);
    return nullptr;
  }
  for (int i = 0; i < opts.threads; ++i) {
    auto w = std::make_unique<Worker>(&sh, i, s->listen_fds_[static_cast<size_t>(i)]);
    if (!w->init(s->stop_fd_, err)) return nullptr;
    s->workers_.push_back(std::move(w));
  }
  for (auto& w : s->workers_) {
    Worker* wp = w.get();
    s->threads_.emplace_back([wp] { wp->run(); });
  }
  return s;
}

void MockServer::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (shared_ == nullptr) return;
  shared_->stopping.store(true, std::memory_order_release);
  if (stop_fd_ >= 0) {
    uint64_t one = 1;
    ssize_t r = ::write(stop_fd_, &one, sizeof one);
    (void)r;
  }
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  // Close the listeners now, so connects after stop() are refused at once
  // rather than queueing in a backlog nobody accepts from.
  for (int fd : listen_fds_) ::close(fd);
  listen_fds_.clear();
}

MockStats MockServer::stats() const {
  MockStats s;
  auto rd = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  for (const auto& w : workers_) {
    const WorkerStats& ws = w->stats();
    s.connections_accepted += rd(ws.accepted);
    s.connections_closed += rd(ws.closed);
    s.requests += rd(ws.requests);
    s.resets += rd(ws.resets);
    s.stalls += rd(ws.stalls);
    s.tls_handshakes += rd(ws.handshakes);
    s.tls_resumed += rd(ws.resumed);
    s.rate_limited += rd(ws.rate_limited);
    s.streams += rd(ws.streams);
    s.stream_token_events += rd(ws.stream_tokens);
    s.streams_cancelled += rd(ws.streams_cancelled);
    s.bytes_in += rd(ws.bytes_in);
    s.bytes_out += rd(ws.bytes_out);
    for (size_t i = 0; i < 600; ++i) s.responses_by_status[i] += rd(ws.by_status[i]);
  }
  return s;
}

}  // namespace barrage::mock
