// HTTP/2 over one connection: many exchanges as streams (H2Session), ready
// once the server's SETTINGS say how many streams it takes, so the pool never
// queues more on it than it will run.
#pragma once

#include <memory>
#include <string>

#include "http/h2_session.hpp"
#include "pool/wire_channel.hpp"

namespace barrage {

class H2Channel final : public WireChannel, private http::H2Events {
 public:
  H2Channel(ChannelOwner& owner, const http::H2Options& options) noexcept : owner_(owner), options_(options) {}

  // Creates the session; its preface goes out at the next flush, and it
  // takes streams at once (H2Session::kStreamsBeforeSettings until the
  // server's SETTINGS say how many). false: *err says why.
  bool init(std::string* err) noexcept;

  bool can_take() const noexcept override { return session_.can_submit(); }
  int64_t start(const http::RequestHead& head, bool watch_body, ExchangeSink* sink, void* user,
                std::string* err) noexcept override;
  void cancel(int64_t handle) noexcept override;
  bool multiplexed() const noexcept override { return true; }
  size_t active() const noexcept override { return session_.active_streams(); }
  uint32_t capacity() const noexcept override { return session_.max_concurrent_streams(); }
  bool going_away() const noexcept override { return session_.going_away(); }

  bool on_plaintext(const char* data, size_t len) noexcept override;
  void on_peer_closed() noexcept override;
  void fail_exchanges(int status, const std::string& message) noexcept override;
  void flush() noexcept override;
  uint64_t completed() const noexcept override { return completed_; }
  // Says goodbye before the connection closes (RFC 9113 §6.8): GOAWAY
  // NO_ERROR, written at once.
  void say_goodbye() noexcept;

 private:
  // http::H2Events; each stream's user pointer is its exchange's.
  void on_first_byte(void* stream_user) noexcept override;
  bool on_data(void* stream_user, http::Response& r, const char* p, size_t n) noexcept override;
  void on_complete(void* stream_user, http::Response& r) noexcept override;
  void on_stream_error(void* stream_user, int status, std::string message, bool unprocessed) noexcept override;

  // Frames nghttp2 has ready -> transport; false when the session failed
  // (its streams are reported) and the connection is closing.
  bool pump() noexcept;

  ChannelOwner& owner_;
  http::H2Options options_;
  http::H2Session session_;
  std::string out_;  // plaintext frames waiting for the transport
  bool settings_seen_ = false;  // the server's limit replaced the assumed one
  bool closed_ = false;
  uint64_t completed_ = 0;
  ExchangeSink* sink_ = nullptr;  // the pool's client: every exchange has the same sink
};

}  // namespace barrage
