// An independent HTTP/2 server over TLS (127.0.0.1 unless told another IPv4 address) for tests (libnghttp2
// server side + OpenSSL, its own certificate from mockserver's TestCa). It
// runs one thread (poll over non-blocking sockets) and records what the
// client put on the wire, per connection and stream, with arrival times:
// request HEADERS, RST_STREAM with its error code, GOAWAY, and EOF. Its
// behaviour is set once at construction: refuse streams (every Nth, or all)
// with REFUSED_STREAM, send GOAWAY after K streams on a connection, answer
// after a delay, or answer with a slow, endless server-sent event stream.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace barrage::test_support {

struct H2PeerOptions {
  // IPv4 literal to listen on; the certificate names it as well as
  // localhost, 127.0.0.1 and ::1 (a network lab's peer address, say).
  std::string address = "127.0.0.1";
  // Refuse (RST_STREAM REFUSED_STREAM) the request streams whose 1-based
  // arrival number, counted over all connections, is a multiple of this;
  // 0 = none.
  int refuse_every = 0;
  // Refuse every request stream.
  bool refuse_all = false;
  // After the K-th request stream on a connection: GOAWAY NO_ERROR with that
  // stream as last-stream-id. Streams above it are never answered (the
  // client must re-send them); the connection closes once the rest are
  // answered. 0 = never.
  int goaway_after = 0;
  // Wait this long after a request has fully arrived before answering.
  int answer_delay_ms = 0;
  // > 0: answer 200 text/event-stream and send one chat.completion.chunk
  // event every this many ms, up to stream_events (then "[DONE]").
  // 0: answer one chat.completion JSON body.
  int stream_interval_ms = 0;
  int stream_events = 1000;
  uint32_t max_concurrent_streams = 128;
};

struct H2PeerEvent {
  enum Kind { connected, headers, rst_stream, goaway, eof, refused, goaway_sent, ignored };
  Kind kind;
  int conn = 0;            // 1-based connection number
  int32_t stream = 0;      // stream id (0 for connection-level events)
  uint32_t error_code = 0; // rst_stream, goaway; eof: 0 after FIN or close_notify,
                           // ECONNRESET after a reset, uint32_t(-1) after a TLS/protocol error
  int32_t last_stream_id = 0;  // goaway, goaway_sent
  std::chrono::steady_clock::time_point at;
};

class H2Peer {
 public:
  // Issues a localhost certificate, listens on 127.0.0.1 with a
  // kernel-chosen port and starts the thread. Never throws: check ok().
  explicit H2Peer(H2PeerOptions options = {});
  // Stops the thread and closes every socket (an abrupt close: the client
  // sees EOF on whatever is still open).
  ~H2Peer();
  H2Peer(const H2Peer&) = delete;
  H2Peer& operator=(const H2Peer&) = delete;

  bool ok() const noexcept { return error_.empty(); }
  const std::string& error() const noexcept { return error_; }
  uint16_t port() const noexcept { return port_; }
  const std::string& ca_pem() const noexcept { return ca_pem_; }
  std::string url(const std::string& path = "/v1/chat/completions") const;
  // The body of every non-streamed answer.
  static const char* json_answer() noexcept;

  // A copy of everything recorded so far, in arrival order. Thread-safe.
  std::vector<H2PeerEvent> events() const;
  size_t count(H2PeerEvent::Kind kind) const;
  // Waits (up to limit) until pred(events()) holds; returns whether it did.
  // Never touches the client: the caller decides whether the client runs.
  bool wait_for(const std::function<bool(const std::vector<H2PeerEvent>&)>& pred,
                std::chrono::milliseconds limit) const;

 private:
  struct Conn;
  struct Stream;
  void run() noexcept;
  void record(H2PeerEvent e);

  H2PeerOptions options_;
  std::string error_;
  std::string ca_pem_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  int streams_seen_ = 0;  // request streams over all connections (peer thread only)
  void* ssl_ctx_ = nullptr;  // SSL_CTX*
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<H2PeerEvent> events_;

  friend struct H2PeerCallbacks;
};

}  // namespace barrage::test_support
