// The pool's side of a channel: how its connection feeds it bytes and
// failures, and how it tells its connection what happened. Pool-internal;
// the core sees only Channel.
#pragma once

#include <string>

#include "pool/channel.hpp"

namespace barrage {

class Transport;

// What a channel asks of the connection that owns it.
class ChannelOwner {
 public:
  virtual Transport& transport() noexcept = 0;
  // An exchange ended (or was cancelled) and the channel may take another,
  // or the channel's frames need writing: handled at the pool's next flush.
  virtual void channel_touched() noexcept = 0;
  // The channel cannot go on: close the connection (RST when abort). Its
  // exchanges have been reported or cancelled already.
  virtual void channel_closed(bool abort) noexcept = 0;

 protected:
  ~ChannelOwner() = default;
};

class WireChannel : public Channel {
 public:
  // Plaintext from the transport. false: the channel closed its connection.
  virtual bool on_plaintext(const char* data, size_t len) noexcept = 0;
  // The peer closed an established connection.
  virtual void on_peer_closed() noexcept = 0;
  // The transport failed (already closed): report every exchange once.
  virtual void fail_exchanges(int status, const std::string& message) noexcept = 0;
  // Frames or bytes waiting to be written (HTTP/2); called from the pool's flush.
  virtual void flush() noexcept {}
  // Exchanges this connection completed (whether it was reused).
  virtual uint64_t completed() const noexcept = 0;
};

}  // namespace barrage
