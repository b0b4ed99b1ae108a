// The one exchange interface both protocols implement. A Channel carries
// requests to one origin over one connection: an HTTP/1.1 channel one at a
// time, an HTTP/2 channel up to the server's stream limit. Every started
// exchange ends with exactly one ExchangeSink::on_complete or on_failure,
// unless it was cancelled first; none of them is called from inside
// start() or cancel(), so the caller of either is never re-entered.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "http/request_head.hpp"
#include "http/response.hpp"

namespace barrage {

// Where an exchange broke, for the retry decision.
enum class ExchangePhase {
  connect,   // no connection could be had (DNS, TCP, CONNECT, TLS)
  send,      // the request was being written, no response byte yet
  response,  // some of the response had arrived
};

struct ExchangeFailure {
  int status = 0;  // brg_status
  std::string message;
  ExchangePhase phase = ExchangePhase::connect;
  bool reused = false;       // the connection had carried an exchange before this one
  bool unprocessed = false;  // the server certainly did not act on it (REFUSED_STREAM, GOAWAY)
  int http_status = 0;       // the status line that arrived before the failure, 0 if none
  bool local = false;        // our side failed (no descriptors, no memory): says nothing of the server
};

// Events of one exchange; `user` is what start() was given, never dereferenced.
class ExchangeSink {
 public:
  virtual void on_first_byte(void* user) noexcept = 0;
  // A piece of body (only for exchanges started with watch_body); r holds
  // the status and headers. Both are valid only during the call. false: the
  // sink took what it needs and the body need not be kept (on_complete's r
  // then has none).
  virtual bool on_body(void* user, const http::Response& r, std::string_view piece) noexcept = 0;
  // The whole response; the sink may move the body out of r.
  virtual void on_complete(void* user, http::Response& r) noexcept = 0;
  virtual void on_failure(void* user, ExchangeFailure f) noexcept = 0;

 protected:
  ~ExchangeSink() = default;
};

class Channel {
 public:
  virtual ~Channel() = default;

  // Room for one more exchange now.
  virtual bool can_take() const noexcept = 0;
  // Starts one exchange. Returns a positive handle for cancel(), or a
  // negative brg_status with *err set and no event ever. The head must stay
  // valid until the exchange's event or cancel().
  virtual int64_t start(const http::RequestHead& head, bool watch_body, ExchangeSink* sink, void* user,
                        std::string* err) noexcept = 0;
  // No event for that exchange after this. HTTP/1.1 resets the connection
  // (an answer half-read cannot be resynchronised); HTTP/2 sends RST_STREAM
  // and keeps the connection. The bytes are handed to the backend before
  // the pool's next flush() returns.
  virtual void cancel(int64_t handle) noexcept = 0;

  virtual bool multiplexed() const noexcept = 0;
  virtual size_t active() const noexcept = 0;  // exchanges started and not ended
  virtual uint32_t capacity() const noexcept = 0;  // 1, or the server's stream limit
  virtual bool going_away() const noexcept = 0;    // takes nothing new (GOAWAY)
};

}  // namespace barrage
