// One pooled connection: its transport, the channel the negotiated protocol
// gives it, and the pool's bookkeeping (idle list, timer, which address).
// It routes transport events to the channel and the channel's requests to
// the pool; it makes no decision of its own.
#pragma once

#include <cstddef>
#include <memory>

#include "loop/intrusive_list.hpp"
#include "loop/timer_wheel.hpp"
#include "pool/transport.hpp"
#include "pool/wire_channel.hpp"

namespace barrage {

class ConnectionPool;
struct OriginPool;

class Connection final : private TransportEvents, private ChannelOwner {
 public:
  enum class State { opening, ready, closed };

  Connection(ConnectionPool& pool, OriginPool& origin, const TransportEnv& env) noexcept
      : pool_(pool), origin_(origin), transport_(env, this) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool open(const SockAddr& addr, const Transport::Target& target, size_t addr_index, int* err) noexcept {
    addr_index_ = addr_index;
    transport_.gate_owner = &origin_;
    return transport_.open(addr, target, err);
  }
  State state() const noexcept { return state_; }
  WireChannel* channel() const noexcept { return channel_.get(); }  // nullptr while opening
  OriginPool& origin() const noexcept { return origin_; }
  const Transport& transport_view() const noexcept { return transport_; }
  // Closes the socket (RST when abort; an HTTP/2 connection closed in
  // order says GOAWAY first). No event after this.
  void close(bool abort) noexcept;

 private:
  friend class ConnectionPool;  // the bookkeeping below is the pool's
  friend struct OriginPool;

  // TransportEvents
  void on_established() noexcept override;
  bool on_plaintext(const char* data, size_t len) noexcept override;
  void on_peer_closed() noexcept override;
  void on_transport_failed(int status, std::string message) noexcept override;
  // ChannelOwner
  Transport& transport() noexcept override { return transport_; }
  void channel_touched() noexcept override;
  void channel_closed(bool abort) noexcept override;

  ConnectionPool& pool_;
  OriginPool& origin_;
  Transport transport_;
  std::unique_ptr<WireChannel> channel_;
  State state_ = State::opening;

  // The pool's bookkeeping.
  size_t addr_index_ = 0;
  Timer timer_;                      // connect timeout while opening, idle timeout while idle
  ListHook<Connection> idle_hook_;   // the origin's idle HTTP/1.1 list
  ListHook<Connection> touch_hook_;  // the pool's list of connections to look at in flush()
  ListHook<Connection> quiet_hook_;  // went quiet this turn: buffers freed at its end if still quiet
};

}  // namespace barrage
