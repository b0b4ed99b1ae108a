// Every origin's connections, and the one place that decides when to open,
// reuse, idle or close one. The core asks for a channel (acquire) and hears
// back through PoolClient when a waiting request gets one or cannot. Work
// found inside socket events (a channel that freed up, frames to write, a
// DNS answer) is queued and done in flush(), which the core calls once per
// step of its loop, so no call into the pool ever re-enters its caller.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "http/h2_session.hpp"
#include "http/response_parser.hpp"
#include "http/url.hpp"
#include "loop/clock.hpp"
#include "loop/counter.hpp"
#include "loop/time_budget.hpp"
#include "loop/timer_wheel.hpp"
#include "pool/channel.hpp"
#include "pool/origin_pool.hpp"
#include "pool/transport.hpp"

namespace barrage {

class DnsResolver;
struct ProxyConfig;

struct PoolSettings {
  int64_t max_conns_per_host = 0;  // 0: no cap
  int64_t connect_timeout_ms = 10000;
  int64_t idle_timeout_ms = 60000;
  int http_version = 0;  // as BRG_OPT_HTTP_VERSION: 2 fails a server that does not pick h2
  http::ResponseLimits limits;
};

struct PoolCounters {
  Counter open, idle, opened, tls_resumed;
};

// The pool's view of its user (the core).
class PoolClient {
 public:
  // w waited and now has c, with room reserved for one exchange: start it
  // now (Channel::start never calls back into the pool).
  virtual void channel_ready(PoolWaiter* w, Channel* c) noexcept = 0;
  // No connection can be had for w (DNS, every address refused, connect
  // timeout, out of descriptors); w has left the waiting list.
  virtual void waiter_failed(PoolWaiter* w, ExchangeFailure f) noexcept = 0;

 protected:
  ~PoolClient() = default;
};

// What a request needs of a pool; ConnectionPool in the engine, a fake in the core's tests.
class ChannelSource {
 public:
  // The origin of url, made on first use; nullptr when out of memory.
  virtual OriginPool* origin(const http::Url& url) noexcept = 0;
  struct Acquired {
    Channel* channel = nullptr;  // start the exchange on it now
    bool failed = false;         // else (no channel): w waits for channel_ready or waiter_failed
    ExchangeFailure failure;
  };
  // A channel with room now, or w waits. fresh: not an idle or shared
  // connection (the last one was a stale keep-alive); w goes first.
  virtual Acquired acquire(OriginPool& o, PoolWaiter& w, bool fresh) noexcept = 0;
  // w no longer waits.
  virtual void withdraw(OriginPool& o, PoolWaiter& w) noexcept = 0;
  // Does the queued work until none is left or the budget is spent; true
  // when it did any. Loop thread, never from an event.
  virtual bool flush(const TimeBudget& budget) noexcept = 0;
  // Queued work is left (a spent budget stopped flush()).
  virtual bool has_work() const noexcept = 0;

 protected:
  ~ChannelSource() = default;
};

class ConnectionPool final : public ChannelSource {
 public:
  ConnectionPool(const PoolSettings& settings, const TransportEnv& env, TimerWheel& wheel, DnsResolver& dns,
                 const ProxyConfig& proxy, const Clock& clock) noexcept;
  // Who hears of waiters served or failed; before the first acquire().
  void bind(PoolClient& client) noexcept { client_ = &client; }
  ~ConnectionPool();  // closes every connection (GOAWAY on HTTP/2 ones)
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  OriginPool* origin(const http::Url& url) noexcept override;
  Acquired acquire(OriginPool& o, PoolWaiter& w, bool fresh) noexcept override;
  void withdraw(OriginPool& o, PoolWaiter& w) noexcept override;
  bool flush(const TimeBudget& budget) noexcept override;
  bool has_work() const noexcept override;
  // End of a turn: frees closed connections (only where none can be on the
  // call stack; each closes its socket then) until the budget is spent, the
  // rest at the next call (has_work() says so), and the TLS buffers of
  // connections still quiet since they went quiet this turn. A connection
  // reused at once keeps its buffers: freeing them per answer costs more
  // than it saves.
  void free_closed(const TimeBudget& budget) noexcept;
  void free_closed() noexcept { free_closed(TimeBudget::unlimited()); }
  // A burst of handshakes ended and left free heap behind; give_back_heap()
  // returns it to the system (malloc_trim: 2.5-10 ms measured, so the
  // engine calls it once no request is left).
  bool heap_to_give_back() const noexcept { return heap_to_give_back_; }
  void give_back_heap() noexcept;
  // Closes every connection: HTTP/2 ones say GOAWAY first.
  void shutdown() noexcept;
  // GOAWAY on every HTTP/2 connection, before a shutdown that lets it out.
  void say_goodbye() noexcept;
  // Some connection still has bytes to send (a GOAWAY behind a send in flight).
  bool output_pending() const noexcept;

  const PoolCounters& counters() const noexcept { return counters_; }

 private:
  friend class Connection;
  friend struct OriginPool;

  // From connections.
  void connection_ready(Connection* c) noexcept;
  void touch(Connection* c) noexcept;
  void close_connection(Connection* c, bool abort, bool goodbye) noexcept;
  void connection_failed(Connection* c, int status, std::string message) noexcept;
  void mark_dirty(OriginPool& o) noexcept;
  WireChannel* make_channel(Connection* c, int* status, std::string* err) noexcept;
  static void on_connection_timer(void* ctx) noexcept;

  void look_at(Connection* c) noexcept;
  void serve(OriginPool& o, const TimeBudget& budget) noexcept;
  // Opens what the waiting list wants, one at least, until the budget is
  // spent (then the origin is marked to go on at the next flush); false
  // with *f when it cannot.
  bool open_for_waiters(OriginPool& o, ExchangeFailure* f, const TimeBudget& budget) noexcept;
  bool open_connection(OriginPool& o, size_t addr_index, ExchangeFailure* f) noexcept;
  void retire(Connection* c) noexcept;
  void fail_oldest(OriginPool& o, ExchangeFailure f) noexcept;
  void fail_counting(OriginPool& o, ExchangeFailure f) noexcept;
  enum class Addresses { ready, pending, failed };
  Addresses addresses(OriginPool& o) noexcept;

  PoolSettings settings_;
  TransportEnv env_;
  TimerWheel& wheel_;
  DnsResolver& dns_;
  const ProxyConfig& proxy_;
  const Clock& clock_;
  PoolClient* client_ = nullptr;
  PoolCounters counters_;
  std::unordered_map<std::string, std::unique_ptr<OriginPool>> origins_;
  std::unordered_set<Connection*> live_;  // opening or ready; owned here
  std::vector<Connection*> dead_;         // closed, freed by free_closed()
  bool heap_to_give_back_ = false;
  IntrusiveList<Connection> touched_;
  IntrusiveList<Connection> quiet_;
  IntrusiveList<OriginPool> dirty_;
  bool stopping_ = false;
};

}  // namespace barrage
