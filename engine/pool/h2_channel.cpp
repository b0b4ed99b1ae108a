// H2Channel: streams in, frames out through the transport; every stream
// reported once to the sink, slots handed back through the owner.
#include "pool/h2_channel.hpp"

#include "barrage.h"
#include "pool/transport.hpp"

namespace barrage {

bool H2Channel::init(std::string* err) noexcept {
  if (!session_.init(this, options_, &out_, err)) return false;
  owner_.channel_touched();  // the preface goes out at the pool's flush
  return true;
}

int64_t H2Channel::start(const http::RequestHead& head, bool, ExchangeSink* sink, void* user,
                         std::string* err) noexcept {
  if (!can_take()) {
    if (err) *err = "HTTP/2 connection to " + owner_.transport().address().to_string() +
                    " cannot take another stream";
    return BRG_E_CLOSED;
  }
  sink_ = sink;
  int32_t id = session_.submit(head, /*keep_body=*/true, user, err);
  if (id > 0) owner_.channel_touched();  // HEADERS go out at the pool's flush, in this call
  return id;
}

void H2Channel::cancel(int64_t handle) noexcept {
  if (closed_) return;
  session_.cancel(int32_t(handle));
  owner_.channel_touched();  // RST_STREAM at the pool's flush, before the caller returns
}

void H2Channel::say_goodbye() noexcept {
  if (closed_) return;
  session_.goodbye();
  if (!out_.empty()) {
    owner_.transport().write(out_);
    out_.clear();
  }
}

bool H2Channel::pump() noexcept {
  if (closed_) return false;
  bool ok = session_.flush();
  if (!out_.empty()) {
    owner_.transport().write(out_);
    out_.clear();
  }
  if (!ok) {
    closed_ = true;
    owner_.channel_closed(true);  // nghttp2's GOAWAY above went out first, best effort
    // The session reported its streams when it failed.
    return false;
  }
  return true;
}

void H2Channel::flush() noexcept { pump(); }

bool H2Channel::on_plaintext(const char* data, size_t len) noexcept {
  if (closed_) return false;
  if (!session_.feed(data, len)) {
    pump();
    if (!closed_) {
      closed_ = true;
      owner_.channel_closed(true);
    }
    return false;
  }
  if (!pump()) return false;
  if (!settings_seen_ && session_.settings_received()) {
    settings_seen_ = true;
    owner_.channel_touched();  // its capacity changed: the pool looks again
  }
  return !closed_;
}

void H2Channel::on_peer_closed() noexcept {
  std::string peer = owner_.transport().address().to_string();
  size_t open = active();
  closed_ = true;
  owner_.channel_closed(false);
  session_.fail_all(BRG_E_IO, "connection closed by " + peer +
                                  (open ? " with " + std::to_string(open) + " HTTP/2 streams open" : " while idle"));
}

void H2Channel::fail_exchanges(int status, const std::string& message) noexcept {
  closed_ = true;
  session_.fail_all(status, message);
}

void H2Channel::on_first_byte(void* user) noexcept { sink_->on_first_byte(user); }

bool H2Channel::on_data(void* user, http::Response& r, const char* p, size_t n) noexcept {
  return sink_->on_body(user, r, std::string_view(p, n));
}

void H2Channel::on_complete(void* user, http::Response& r) noexcept {
  ++completed_;
  sink_->on_complete(user, r);
  owner_.channel_touched();
}

void H2Channel::on_stream_error(void* user, int status, std::string message, bool unprocessed) noexcept {
  ExchangeFailure f;
  f.status = status;
  f.message = std::move(message);
  f.phase = unprocessed ? ExchangePhase::send : ExchangePhase::response;
  f.reused = completed_ > 0;
  f.unprocessed = unprocessed;
  sink_->on_failure(user, std::move(f));
  if (!closed_) owner_.channel_touched();
}

}  // namespace barrage
