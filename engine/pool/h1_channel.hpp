// HTTP/1.1 over one connection: one exchange at a time, keep-alive between
// them, llhttp underneath (ResponseParser).
#pragma once

#include "http/response_parser.hpp"
#include "pool/wire_channel.hpp"

namespace barrage {

class H1Channel final : public WireChannel {
 public:
  H1Channel(ChannelOwner& owner, const http::ResponseLimits& limits) noexcept : owner_(owner), parser_(limits) {}

  bool can_take() const noexcept override { return !busy_ && !closed_; }
  int64_t start(const http::RequestHead& head, bool watch_body, ExchangeSink* sink, void* user,
                std::string* err) noexcept override;
  void cancel(int64_t handle) noexcept override;
  bool multiplexed() const noexcept override { return false; }
  size_t active() const noexcept override { return busy_ ? 1 : 0; }
  uint32_t capacity() const noexcept override { return 1; }
  bool going_away() const noexcept override { return closed_; }

  bool on_plaintext(const char* data, size_t len) noexcept override;
  void on_peer_closed() noexcept override;
  void fail_exchanges(int status, const std::string& message) noexcept override;
  uint64_t completed() const noexcept override { return responses_; }

 private:
  // Reports the exchange's failure, then closes the connection.
  void fail(int status, std::string message) noexcept;
  void complete(bool reusable) noexcept;

  ChannelOwner& owner_;
  http::ResponseParser parser_;
  ExchangeSink* sink_ = nullptr;
  void* user_ = nullptr;
  bool busy_ = false;
  bool watch_body_ = false;
  bool closed_ = false;
  uint64_t responses_ = 0;
};

}  // namespace barrage
