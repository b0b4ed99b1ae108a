// H1Channel: write the request, feed the parser, report one event.
#include "pool/h1_channel.hpp"

#include "barrage.h"
#include "pool/transport.hpp"

namespace barrage {

namespace {
// A dropped body's buffer is kept for the next read's bytes up to this size.
constexpr size_t kDroppedBodyCapacity = 16 * 1024;
}  // namespace

int64_t H1Channel::start(const http::RequestHead& head, bool watch_body, ExchangeSink* sink, void* user,
                         std::string* err) noexcept {
  if (!can_take()) {
    if (err) *err = "HTTP/1.1 connection is busy or closed";
    return BRG_E_CLOSED;
  }
  parser_.reset(head.head_method());
  sink_ = sink;
  user_ = user;
  watch_body_ = watch_body;
  busy_ = true;
  owner_.transport().write(head.wire());
  return 1;
}

void H1Channel::cancel(int64_t) noexcept {
  if (!busy_) return;
  sink_ = nullptr;
  busy_ = false;
  // A half-read answer cannot be resynchronised: reset the connection.
  closed_ = true;
  owner_.channel_closed(true);
}

void H1Channel::fail(int status, std::string message) noexcept {
  closed_ = true;
  owner_.channel_closed(true);
  fail_exchanges(status, message);
}

void H1Channel::fail_exchanges(int status, const std::string& message) noexcept {
  closed_ = true;
  if (!busy_) return;
  busy_ = false;
  ExchangeSink* s = sink_;
  sink_ = nullptr;
  ExchangeFailure f;
  f.status = status;
  f.message = message;
  f.phase = parser_.started() ? ExchangePhase::response : ExchangePhase::send;
  f.reused = responses_ > 0;
  f.http_status = parser_.status() >= 200 ? parser_.status() : 0;
  s->on_failure(user_, std::move(f));
}

void H1Channel::complete(bool reusable) noexcept {
  ++responses_;
  busy_ = false;
  ExchangeSink* s = sink_;
  sink_ = nullptr;
  if (!reusable) closed_ = true;
  s->on_complete(user_, parser_.response());
  if (reusable)
    owner_.channel_touched();
  else
    owner_.channel_closed(false);
}

bool H1Channel::on_plaintext(const char* data, size_t len) noexcept {
  if (!busy_) {
    fail(BRG_E_PROTOCOL, "unexpected data from " + owner_.transport().address().to_string() +
                             " with no request outstanding");
    return false;
  }
  bool was_started = parser_.started();
  size_t body_before = parser_.body().size();
  size_t used = 0;
  http::ResponseParser::State st = parser_.feed(data, len, &used);
  if (!was_started && parser_.started()) sink_->on_first_byte(user_);
  if (watch_body_ && busy_ && parser_.body().size() > body_before) {
    const std::string& body = parser_.body();
    bool keep = sink_->on_body(user_, parser_.response(), std::string_view(body).substr(body_before));
    if (!keep && busy_) parser_.response().drop_body(kDroppedBodyCapacity);
  }
  if (!busy_) return false;  // cancelled from an event above
  if (st == http::ResponseParser::State::error) {
    fail(parser_.error() == http::ResponseParser::Error::too_large ? BRG_E_TOO_LARGE : BRG_E_PROTOCOL,
         parser_.error_message());
    return false;
  }
  if (st != http::ResponseParser::State::complete) return true;
  // Bytes past the response mean the peer is out of step: answer, then drop.
  bool reusable = parser_.keep_alive() && used == len;
  complete(reusable);
  return reusable;
}

void H1Channel::on_peer_closed() noexcept {
  std::string peer = owner_.transport().address().to_string();
  if (busy_ && parser_.started() && parser_.finish() == http::ResponseParser::State::complete) {
    complete(false);
    return;
  }
  if (!busy_) {
    closed_ = true;
    owner_.channel_closed(false);
    return;
  }
  // Cut off mid-answer: a transport failure like a reset, so retryable.
  fail(BRG_E_IO, "connection closed by " + peer +
                     (parser_.started() ? " before the end of the response" : " before any response byte"));
}

}  // namespace barrage
