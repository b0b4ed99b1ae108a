// Sans-I/O HTTP/2 client session over nghttp2: many concurrent requests on
// one connection. The caller moves bytes (TLS included, ALPN negotiated with
// kAlpnH2Http11); this class turns submitted requests into frames in an
// output string and received frames into per-stream events.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nghttp2/nghttp2.h>

#include "http/h2_request.hpp"
#include "http/request_head.hpp"
#include "http/response.hpp"
#include "loop/intrusive_list.hpp"

namespace barrage::http {

// ALPN protocol list in wire form (length-prefixed): prefer h2, accept http/1.1.
inline constexpr std::string_view kAlpnH2Http11{"\x02h2\x08http/1.1", 12};

struct H2Options {
  size_t max_body_bytes = 64u << 20;    // DATA bytes a response keeps (a body not kept is unbounded here)
  size_t max_header_bytes = 64 * 1024;  // name + value bytes per response: 1xx, final and trailers
  uint32_t stream_window = 16u << 20;   // SETTINGS_INITIAL_WINDOW_SIZE (at most 2^31-1)
  uint32_t connection_window = 64u << 20;
  bool tls = true;  // :scheme "https"; false sends "http" (cleartext h2, tests only)
};

// Every submitted stream ends with exactly one on_complete or on_stream_error,
// unless it was cancel()ed first. All are called from inside H2Session's
// feed(), flush() or fail_all(), never from submit() or cancel(); none may
// destroy the session or call feed()/flush() (submit() and cancel() are fine).
class H2Events {
 public:
  // The HEADERS of the final (non-1xx) response began.
  virtual void on_first_byte(void* stream_user) noexcept = 0;
  // Each DATA chunk, in order, as it arrives (r has the status and headers);
  // p and r are valid only during the call. false: the reader took what it
  // needs, so the stream stops keeping its body (r's body is dropped now,
  // later chunks are only passed on and max_body_bytes no longer applies).
  virtual bool on_data(void* stream_user, Response& r, const char* p, size_t n) noexcept = 0;
  // The response ended (END_STREAM). r is valid only during the call.
  virtual void on_complete(void* stream_user, Response& r) noexcept = 0;
  // status is a brg_status (BRG_E_*). unprocessed: the server did not act on
  // the request (REFUSED_STREAM, above a GOAWAY's last stream id, or never
  // sent), so it is safe to retry elsewhere without charging a retry.
  virtual void on_stream_error(void* stream_user, int status, std::string message,
                               bool unprocessed) noexcept = 0;

 protected:
  ~H2Events() = default;
};

class H2Session {
 public:
  H2Session() noexcept = default;
  ~H2Session();  // reports nothing; call fail_all() first if streams must end
  H2Session(const H2Session&) = delete;
  H2Session& operator=(const H2Session&) = delete;

  // Creates the nghttp2 session and appends the connection preface, SETTINGS
  // (push off, stream window) and the connection WINDOW_UPDATE to *out. `out`
  // and `events` must outlive the session; flush() keeps appending to *out.
  bool init(H2Events* events, const H2Options& options, std::string* out, std::string* err) noexcept;

  // Queues one request (request_writer's HTTP/1.1 bytes; the wire must stay
  // valid until the stream's event or cancel()). Returns the stream id, or a
  // negative brg_status with *err set and no event ever: BRG_E_INVALID (wire
  // not convertible), BRG_E_NOMEM, BRG_E_CLOSED (going away or failed).
  // stream_user is handed back in events, never dereferenced. Call flush().
  // Submitting past can_submit() is accepted: nghttp2 holds the HEADERS
  // until the peer's concurrency limit leaves room.
  int32_t submit(std::string_view http1_wire, bool keep_body, void* stream_user,
                 std::string* err) noexcept;
  // The same from a head built at submit (its fields and body must stay
  // valid as the wire above): no parsing per attempt.
  int32_t submit(const RequestHead& head, bool keep_body, void* stream_user, std::string* err) noexcept;

  // Plaintext from the peer (all of it is consumed). false: connection-level
  // error (error()); every open stream has then been reported once
  // (BRG_E_PROTOCOL, unprocessed when its HEADERS never left), the GOAWAY
  // nghttp2 answers with is already in *out, and the session takes nothing
  // more: send *out, then close. Call flush() after every successful feed:
  // received frames often need an answer (SETTINGS ack, WINDOW_UPDATE, our
  // RST_STREAM for a stream over its limits) and requests submitted from
  // events are only framed there.
  bool feed(const char* p, size_t n) noexcept;
  // Appends every frame nghttp2 has ready to *out (preface, HEADERS, DATA
  // within the peer's windows, RST_STREAM, acks). Events may fire here too
  // (a stream whose HEADERS could not be sent, a protocol error found late).
  // false: the session failed (streams reported as in feed()); bytes already
  // appended are still worth sending. A no-op when called from an event.
  // Stops once *out holds max_out bytes or more (whole frames only), so
  // large uploads need not be buffered at once: call again as *out drains
  // while wants_write() is true.
  bool flush(size_t max_out = SIZE_MAX) noexcept;

  // RST_STREAM CANCEL (sent at the next flush); no event for that stream
  // after this. Unknown or already reported streams are ignored.
  void cancel(int32_t stream_id) noexcept;
  // GOAWAY NO_ERROR into *out (RFC 9113 §6.8: say so before closing an
  // idle connection or on shutdown); the session takes no new streams.
  void goodbye() noexcept;
  // The connection died outside the session (EOF, TLS or socket error):
  // reports every open stream once with this status; the session is failed.
  void fail_all(int status, std::string_view message) noexcept;

  size_t active_streams() const noexcept { return open_; }  // submitted, not yet reported
  // The peer's SETTINGS_MAX_CONCURRENT_STREAMS (100 until its SETTINGS arrive).
  uint32_t max_concurrent_streams() const noexcept;
  // Not going away and below the peer's stream limit.
  bool can_submit() const noexcept;
  bool going_away() const noexcept { return goaway_received_ || goaway_sent_ || failed_; }
  // false: nothing more to read or write; the connection may be closed.
  bool wants_io() const noexcept;
  // nghttp2 has frames it may send now (the peer's windows allowing).
  bool wants_write() const noexcept;
  bool failed() const noexcept { return failed_; }
  // Streams opened before the server's first SETTINGS arrive (nghttp2 would
  // allow unlimited): the 100 RFC 9113 (5.1.2) asks servers to allow at
  // least. Requests go out with the client's preface, one round trip before
  // SETTINGS could say more; a server that allows fewer refuses the rest
  // (REFUSED_STREAM), which the engine re-sends free.
  static constexpr uint32_t kStreamsBeforeSettings = 100;
  // The server's first SETTINGS arrived: max_concurrent_streams() is its own.
  bool settings_received() const noexcept { return settings_received_; }
  const std::string& error() const noexcept { return error_; }

 private:
  struct Stream;
  struct Callbacks;
  friend struct Callbacks;
  static void install_callbacks(nghttp2_session_callbacks* cbs) noexcept;
  static nghttp2_data_source_read_callback body_reader() noexcept;

  int32_t submit_fields(const std::vector<HeaderView>& fields, std::string_view body, bool keep_body,
                        void* stream_user, std::string* err) noexcept;
  Stream* acquire() noexcept;
  void release(Stream* s) noexcept;
  Stream* find(int32_t stream_id) const noexcept;
  void complete(Stream* s) noexcept;
  void report_error(Stream* s, int status, std::string message, bool unprocessed) noexcept;
  void reset_stream(Stream* s, int status, std::string message) noexcept;
  void report_closed(Stream* s, uint32_t error_code) noexcept;
  void fail_session(std::string message) noexcept;

  nghttp2_session* session_ = nullptr;
  H2Events* events_ = nullptr;
  std::string* out_ = nullptr;
  H2Options options_;
  H2RequestBuilder builder_;
  std::vector<nghttp2_nv> nv_;  // reused per submit; nghttp2 copies the pairs
  IntrusiveList<Stream> live_;  // streams nghttp2 may still reference
  std::vector<Stream*> free_;   // recycled streams, kept for their buffers
  size_t open_ = 0;
  int depth_ = 0;  // > 0 while inside nghttp2 (feed/flush)
  bool failed_ = false;  // no new streams; every open one has been reported
  bool dead_ = false;    // nghttp2 itself failed (fatal error, lost bytes): no more I/O
  bool goaway_received_ = false;
  bool settings_received_ = false;
  bool goaway_sent_ = false;
  bool ids_exhausted_ = false;
  int32_t goaway_last_id_ = 0;
  std::string error_;
  std::string last_lib_error_;  // nghttp2's latest connection-level message
};

}  // namespace barrage::http
