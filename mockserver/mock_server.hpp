// An OpenAI-compatible HTTPS/1.1 endpoint with fault injection, for tests,
// benchmarks and demos. It shares no code with the engine on purpose: an
// independent implementation is a peer that can disagree with it.
//
// Endpoints: POST /v1/chat/completions, /v1/completions, /v1/embeddings
// (with "stream": true the first two answer as SSE), GET /health.
// Per-request control headers (they override the global rates):
//   x-mock-latency-ms: N        answer after N ms instead of the global latency
//   x-mock-status: 429|500|...  answer with that status and an OpenAI error body
//   x-mock-retry-after: V       raw Retry-After value (429/503 get retry_after_s otherwise)
//   x-mock-retry-after-ms: N    also send retry-after-ms: N
//   x-mock-fault: reset-before | reset-during | stall | drip | truncate |
//                 malformed | close | huge
//   x-mock-drip-ms: N           drip interval per byte (default 10)
//   x-mock-huge-bytes: N        body size for huge (default 100 MiB)
//   x-mock-fail-times: N        only the first N requests with the same
//   x-mock-fail-key: K          x-mock-fail-key get x-mock-status (429 if
//                               absent) or x-mock-fault; later ones succeed
// Streaming ("stream": true; sse_stream.hpp has the timeline): the headers
// and a role event with empty content go out at once (after the latency),
// then one event per token, paced on the worker's timers, then the finish
// chunk, a usage chunk if stream_options.include_usage, "data: [DONE]".
//   x-mock-stream-tokens: N        N token events " tok1" .. " tokN" (default:
//                                  one per word of the natural answer)
//   x-mock-first-token-ms: N       role event -> first token (default 0)
//   x-mock-stream-interval-ms: N   token -> next token (default 0)
//   x-mock-stream-stall-after: N   after N token events go silent, connection open
//   x-mock-stream-reset-after: N   after N token events (ACKed) send RST
// A client that closes its side mid-stream cancels the stream.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace barrage::mock {

struct MockOptions {
  std::string host = "127.0.0.1";  // numeric address or a name getaddrinfo resolves
  uint16_t port = 0;               // 0: the kernel picks; read it back with port()
  bool tls = true;
  // PEM server certificate (leaf first, then any intermediates) and key.
  // Empty with tls: a fresh in-memory CA issues a leaf for localhost,
  // 127.0.0.1 and ::1; MockServer::ca_pem() returns that CA.
  std::string cert_pem, key_pem;
  int threads = 1;  // worker threads, each with its own epoll loop

  // Latency added before every /v1/* answer: latency_ms + uniform[0, jitter].
  uint32_t latency_ms = 0, latency_jitter_ms = 0;

  // Fault rates in 0..1 for /v1/* requests without x-mock-status or
  // x-mock-fault; one draw per request picks at most one of them.
  double rate_429 = 0, rate_500 = 0, rate_503 = 0;
  double rate_reset_before = 0, rate_reset_during = 0, rate_stall = 0;
  double rate_truncate = 0, rate_malformed = 0;
  uint32_t retry_after_s = 1;  // Retry-After sent with 429 and 503

  uint32_t limit_rps = 0;  // >0: more than this many /v1/* requests in any 1 s window get 429
  uint64_t seed = 1;       // fault and jitter draws; worker i uses seed + i

  uint32_t idle_timeout_ms = 0;      // >0: close keep-alive connections idle this long
  uint32_t keepalive_requests = 0;   // >0: close after this many responses (like nginx)

  // Pacing of "stream": true answers, for every request that does not set
  // the matching x-mock-stream-* / x-mock-first-token-ms header. -1: off.
  int64_t stream_tokens = -1;        // >=0: that many " tokK" events; -1: one per answer word
  uint32_t stream_interval_ms = 0;   // planned gap between token events
  uint32_t first_token_ms = 0;       // planned gap between the role event and the first token
  int64_t stream_stall_after = -1;   // >=0: silent after this many token events
  int64_t stream_reset_after = -1;   // >=0: RST after this many token events
};

// Counters summed over all workers at the moment of the call.
struct MockStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_closed = 0;
  uint64_t requests = 0;        // complete requests parsed
  uint64_t resets = 0;          // connections ended with RST (reset-before/during)
  uint64_t stalls = 0;          // requests never (fully) answered: stall, stream-stall-after
  uint64_t tls_handshakes = 0;  // completed handshakes
  uint64_t tls_resumed = 0;     // of which resumed a session (ticket or cache)
  uint64_t rate_limited = 0;    // 429s sent by limit_rps
  uint64_t streams = 0;             // paced SSE answers begun
  uint64_t stream_token_events = 0;  // token events they wrote
  uint64_t streams_cancelled = 0;   // of them, ended by a closing client (or stop())
  uint64_t bytes_in = 0, bytes_out = 0;  // plaintext HTTP bytes
  std::array<uint64_t, 600> responses_by_status{};  // index = HTTP status

  uint64_t status(int code) const {
    return code >= 0 && code < 600 ? responses_by_status[static_cast<size_t>(code)] : 0;
  }
  uint64_t responses() const;
};

class Worker;
struct SharedState;

class MockServer {
 public:
  // Binds, starts the worker threads and returns once the socket is
  // listening. nullptr on failure with *err (when non-null) set.
  static std::unique_ptr<MockServer> start(const MockOptions& opts, std::string* err);
  ~MockServer();  // stop()s

  MockServer(const MockServer&) = delete;
  MockServer& operator=(const MockServer&) = delete;

  uint16_t port() const { return port_; }
  const MockOptions& options() const { return opts_; }
  // PEM of the CA that issued the generated certificate ("" when the caller
  // supplied cert_pem or tls is off).
  const std::string& ca_pem() const { return ca_pem_; }

  // Stops accepting, closes every connection (mid-request or stalled ones
  // included) and joins the workers. Idempotent; any thread but a worker.
  void stop();

  // Safe from any thread while running and after stop().
  MockStats stats() const;

 private:
  MockServer();

  MockOptions opts_;
  uint16_t port_ = 0;
  std::string ca_pem_;
  std::unique_ptr<SharedState> shared_;
  int stop_fd_ = -1;  // eventfd, readable once stop() runs; never drained
  std::vector<int> listen_fds_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  bool stopped_ = false;
};

}  // namespace barrage::mock
