// Test-side HTTP/1.1 client (see test_client.hpp): non-blocking socket plus
// poll() so every wait is bounded, OpenSSL with peer and hostname checks.
#include "test_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace barrage::mock::testing {
namespace {

using Clock = std::chrono::steady_clock;

// OpenSSL writes through write(2), so a close_notify or request sent to a
// connection the mock just reset would raise SIGPIPE and end the test run.
const bool kSigpipeIgnored = [] {
  signal(SIGPIPE, SIG_IGN);
  return true;
}();

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

bool wait_fd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, remaining_ms(deadline));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return out;
}

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& h : headers) {
    if (h.first == name) return h.second;
  }
  return {};
}

bool HttpResponse::has_header(std::string_view name) const {
  for (const auto& h : headers) {
    if (h.first == name) return true;
  }
  return false;
}

std::unique_ptr<TestClient> TestClient::connect(uint16_t port, const Tls* tls, std::string* err,
                                                int timeout_ms, bool ipv6) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::unique_ptr<TestClient> c(new TestClient());
  c->fd_ = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd_ < 0) {
    *err = std::string("socket: ") + std::strerror(errno);
    return nullptr;
  }
  int one = 1;
  setsockopt(c->fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int r;
  if (ipv6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    a.sin6_addr = in6addr_loopback;
    r = ::connect(c->fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r = ::connect(c->fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  if (r != 0 && errno != EINPROGRESS) {
    *err = std::string("connect: ") + std::strerror(errno);
    return nullptr;
  }
  if (r != 0) {
    if (!wait_fd(c->fd_, POLLOUT, deadline)) {
      *err = "connect: timeout";
      return nullptr;
    }
    int so_err = 0;
    socklen_t len = sizeof so_err;
    getsockopt(c->fd_, SOL_SOCKET, SO_ERROR, &so_err, &len);
    if (so_err != 0) {
      *err = std::string("connect: ") + std::strerror(so_err);
      return nullptr;
    }
  }
  if (tls == nullptr) return c;

  c->ctx_ = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_options(c->ctx_, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_verify(c->ctx_, SSL_VERIFY_PEER, nullptr);
  BIO* bio = BIO_new_mem_buf(tls->ca_pem.data(), static_cast<int>(tls->ca_pem.size()));
  X509* ca = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (ca == nullptr) {
    *err = "bad CA PEM";
    return nullptr;
  }
  X509_STORE_add_cert(SSL_CTX_get_cert_store(c->ctx_), ca);
  X509_free(ca);
  c->ssl_ = SSL_new(c->ctx_);
  SSL_set_fd(c->ssl_, c->fd_);
  SSL_set_tlsext_host_name(c->ssl_, tls->host.c_str());
  SSL_set1_host(c->ssl_, tls->host.c_str());
  if (tls->session != nullptr) SSL_set_session(c->ssl_, tls->session);
  for (;;) {
    ERR_clear_error();
    int hr = SSL_connect(c->ssl_);
    if (hr == 1) break;
    int e = SSL_get_error(c->ssl_, hr);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      if (!wait_fd(c->fd_, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) {
        *err = "TLS handshake: timeout";
        return nullptr;
      }
      continue;
    }
    long v = SSL_get_verify_result(c->ssl_);
    char buf[256] = "";
    ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
    *err = std::string("TLS handshake failed: ") + buf;
    if (v != X509_V_OK) {
      *err += " (verify: ";
      *err += X509_verify_cert_error_string(v);
      *err += ")";
    }
    ERR_clear_error();
    return nullptr;
  }
  return c;
}

TestClient::~TestClient() {
  if (ssl_ != nullptr) {
    // Without a close_notify OpenSSL marks the session non-resumable, which
    // would defeat the resumption test.
    ERR_clear_error();
    SSL_shutdown(ssl_);
    ERR_clear_error();
    SSL_free(ssl_);
  }
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  if (fd_ >= 0) ::close(fd_);
}

SSL_SESSION* TestClient::get1_session() const {
  return ssl_ != nullptr ? SSL_get1_session(ssl_) : nullptr;
}

bool TestClient::send(std::string_view data, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!data.empty()) {
    if (ssl_ != nullptr) {
      ERR_clear_error();
      int r = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
      if (r > 0) {
        data.remove_prefix(static_cast<size_t>(r));
        continue;
      }
      int e = SSL_get_error(ssl_, r);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return false;
      if (!wait_fd(fd_, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) return false;
    } else {
      ssize_t r = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (r > 0) {
        data.remove_prefix(static_cast<size_t>(r));
        continue;
      }
      if (r < 0 && errno != EAGAIN && errno != EINTR) return false;
      if (!wait_fd(fd_, POLLOUT, deadline)) return false;
    }
  }
  return true;
}

int TestClient::read_some(char* buf, size_t len, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (ssl_ != nullptr) {
      ERR_clear_error();
      int r = SSL_read(ssl_, buf, static_cast<int>(len));
      if (r > 0) return r;
      int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_ZERO_RETURN) return 0;
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if (!wait_fd(fd_, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) return -1;
        continue;
      }
      last_errno_ = errno;
      ERR_clear_error();
      return -2;
    }
    ssize_t r = ::recv(fd_, buf, len, 0);
    if (r > 0) return static_cast<int>(r);
    if (r == 0) return 0;
    if (errno == EAGAIN || errno == EINTR) {
      if (!wait_fd(fd_, POLLIN, deadline)) return -1;
      continue;
    }
    last_errno_ = errno;
    return -2;
  }
}

bool TestClient::fill(int timeout_ms) {
  char tmp[16384];
  int r = read_some(tmp, sizeof tmp, timeout_ms);
  last_fill_ = r;
  if (r > 0) {
    buf_.append(tmp, static_cast<size_t>(r));
    return true;
  }
  if (r == 0) eof_ = true;
  return false;
}

ReadEnd TestClient::fill_end() const {
  if (last_fill_ == 0) return ReadEnd::kEof;
  if (last_fill_ == -1) return ReadEnd::kTimeout;
  return (last_errno_ == ECONNRESET || last_errno_ == EPIPE) ? ReadEnd::kReset : ReadEnd::kError;
}

bool TestClient::read_head(HttpResponse* out, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (!parse_head(out, deadline)) return false;
    if (out->status < 100 || out->status >= 200) return true;
  }
}

ChunkRead TestClient::read_chunk(std::string* data, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  auto failed = [this] {
    switch (fill_end()) {
      case ReadEnd::kEof: return ChunkRead::kEof;
      case ReadEnd::kTimeout: return ChunkRead::kTimeout;
      case ReadEnd::kReset: return ChunkRead::kReset;
      default: return ChunkRead::kError;
    }
  };
  size_t le;
  while ((le = buf_.find("\r\n")) == std::string::npos) {
    if (!fill(remaining_ms(deadline))) return failed();
  }
  size_t size = std::strtoul(buf_.c_str(), nullptr, 16);
  while (buf_.size() < le + 2 + size + 2) {
    if (!fill(remaining_ms(deadline))) return failed();
  }
  data->assign(buf_, le + 2, size);
  buf_.erase(0, le + 2 + size + 2);
  return size == 0 ? ChunkRead::kLast : ChunkRead::kData;
}

bool TestClient::parse_head(HttpResponse* out, Clock::time_point deadline) {
  *out = HttpResponse{};
  size_t head_end;
  while ((head_end = buf_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(remaining_ms(deadline))) return false;
  }
  std::string head = buf_.substr(0, head_end);
  buf_.erase(0, head_end + 4);
  size_t eol = head.find("\r\n");
  out->status_line = head.substr(0, eol);
  if (out->status_line.size() >= 12) out->status = std::atoi(out->status_line.c_str() + 9);
  size_t pos = eol == std::string::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    size_t next = head.find("\r\n", pos);
    if (next == std::string::npos) next = head.size();
    std::string line = head.substr(pos, next - pos);
    pos = next + 2;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    out->headers.emplace_back(lower(line.substr(0, colon)), value);
  }
  return true;
}

bool TestClient::read_response(HttpResponse* out, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (!parse_head(out, deadline)) return false;
    if (out->status >= 100 && out->status < 200) continue;  // interim, e.g. 100 Continue

    if (lower(out->header("transfer-encoding")) == "chunked") {
      for (;;) {
        size_t le;
        while ((le = buf_.find("\r\n")) == std::string::npos) {
          if (!fill(remaining_ms(deadline))) return false;
        }
        size_t size = std::strtoul(buf_.c_str(), nullptr, 16);
        while (buf_.size() < le + 2 + size + 2) {
          if (!fill(remaining_ms(deadline))) return false;
        }
        out->raw_body_bytes += le + 2 + size + 2;
        out->body.append(buf_, le + 2, size);
        buf_.erase(0, le + 2 + size + 2);
        if (size == 0) return true;  // (no trailers from the mock)
      }
    }
    if (out->has_header("content-length")) {
      size_t len = std::strtoull(out->header("content-length").c_str(), nullptr, 10);
      while (buf_.size() < len) {
        if (!fill(remaining_ms(deadline))) {
          out->body = buf_;
          out->raw_body_bytes = buf_.size();
          buf_.clear();
          return false;
        }
      }
      out->body = buf_.substr(0, len);
      out->raw_body_bytes = len;
      buf_.erase(0, len);
      return true;
    }
    while (fill(remaining_ms(deadline))) {
    }
    out->body.swap(buf_);
    buf_.clear();
    out->raw_body_bytes = out->body.size();
    return eof_;
  }
}

std::string TestClient::read_until_close(int timeout_ms, ReadEnd* end) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string all;
  all.swap(buf_);
  char tmp[16384];
  for (;;) {
    int r = read_some(tmp, sizeof tmp, remaining_ms(deadline));
    if (r > 0) {
      all.append(tmp, static_cast<size_t>(r));
      continue;
    }
    if (r == 0) *end = ReadEnd::kEof;
    else if (r == -1) *end = ReadEnd::kTimeout;
    else *end = (last_errno_ == ECONNRESET || last_errno_ == EPIPE) ? ReadEnd::kReset : ReadEnd::kError;
    return all;
  }
}

std::string make_request(std::string_view method, std::string_view path, std::string_view body,
                         const std::vector<std::string>& extra_headers) {
  std::string r;
  r += method;
  r += ' ';
  r += path;
  r += " HTTP/1.1\r\nhost: localhost\r\n";
  if (method != "GET" || !body.empty()) {
    r += "content-type: application/json\r\ncontent-length: ";
    r += std::to_string(body.size());
    r += "\r\n";
  }
  for (const std::string& h : extra_headers) {
    r += h;
    r += "\r\n";
  }
  r += "\r\n";
  r += body;
  return r;
}

}  // namespace barrage::mock::testing
