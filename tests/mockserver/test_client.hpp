// A small blocking-style HTTP/1.1 client over OpenSSL for the mock server's
// tests: every call takes a timeout, so a server bug fails a test instead of
// hanging it. Independent of the engine on purpose, like the server.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_session_st SSL_SESSION;

namespace barrage::mock::testing {

struct HttpResponse {
  int status = 0;
  std::string status_line;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;                                          // de-chunked
  size_t raw_body_bytes = 0;  // body bytes as received (before de-chunking)

  // Value of the first header with that (lower-case) name, "" if absent.
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
};

enum class ReadEnd { kEof, kReset, kTimeout, kError };

// What read_chunk() found next in a chunked body.
enum class ChunkRead { kData, kLast, kTimeout, kEof, kReset, kError };

class TestClient {
 public:
  struct Tls {
    std::string ca_pem;                 // the only trusted CA
    std::string host = "localhost";     // SNI and the name verified
    SSL_SESSION* session = nullptr;     // offered for resumption (not owned)
  };

  // Connects to 127.0.0.1:port (or ::1 with ipv6); with tls set, completes
  // a verified handshake. nullptr and *err on failure (for TLS, err carries
  // the verification result text).
  static std::unique_ptr<TestClient> connect(uint16_t port, const Tls* tls, std::string* err,
                                             int timeout_ms = 5000, bool ipv6 = false);
  ~TestClient();

  bool send(std::string_view data, int timeout_ms = 5000);
  // >0 bytes read, 0 on EOF, -1 on timeout, -2 on reset/error.
  int read_some(char* buf, size_t len, int timeout_ms);
  // One complete response (1xx interim responses are skipped).
  bool read_response(HttpResponse* out, int timeout_ms = 5000);
  // Only the status line and headers of the next response (1xx skipped);
  // the body is left for read_chunk(), so a stream can be read as it comes.
  bool read_head(HttpResponse* out, int timeout_ms = 5000);
  // The next chunk of a chunked body: kData with *data set, kLast for the
  // terminating zero chunk (no trailers expected), or how reading failed.
  ChunkRead read_chunk(std::string* data, int timeout_ms);
  // Everything until the connection ends; *end says how it ended.
  std::string read_until_close(int timeout_ms, ReadEnd* end);

  SSL* ssl() const { return ssl_; }
  SSL_SESSION* get1_session() const;  // caller frees with SSL_SESSION_free
  int fd() const { return fd_; }
  int last_errno() const { return last_errno_; }

 private:
  TestClient() = default;
  bool fill(int timeout_ms);  // reads more into buf_
  ReadEnd fill_end() const;   // why the last fill() failed
  // Status line and headers into *out (from buf_, reading more as needed).
  bool parse_head(HttpResponse* out, std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::string buf_;
  int last_errno_ = 0;
  int last_fill_ = 0;  // read_some()'s result in the last fill()
  bool eof_ = false;
};

std::string make_request(std::string_view method, std::string_view path, std::string_view body,
                         const std::vector<std::string>& extra_headers = {});

}  // namespace barrage::mock::testing
