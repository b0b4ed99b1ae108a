// One connection to Redis on the reactor: hiredis's async context driven by
// the backend's fd watches (no thread of its own, never blocking the loop),
// every command bounded by a timeout on the timer wheel. A link that fails
// (refused, reset, garbage, a reply too late) fails every command it holds
// at once and connects again on the next command after a short pause.
// Also: the redis:// URL parser and the blocking probe the engine runs once,
// at creation, on the creating thread, to report bad settings clearly.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "loop/backend.hpp"
#include "loop/clock.hpp"
#include "loop/counter.hpp"
#include "loop/timer_wheel.hpp"

struct redisAsyncContext;

namespace barrage {

struct RedisEndpoint {
  std::string host;  // an IP literal once probed (names are resolved there)
  uint16_t port = 6379;
  std::string user, password;  // never logged
  int64_t db = 0;
};

// "redis://[user:password@]host:port[/db]"; "" on success, else why not.
// rediss:// is refused while the installed hiredis has no TLS.
std::string parse_redis_url(const std::string& url, RedisEndpoint* out);

struct RedisProbe {
  bool reachable = false;  // false: connection refused or timed out (fall back, not an error)
  std::string error;       // set: the settings are wrong (not Redis, bad password, bad db)
  std::string script_sha;  // SCRIPT LOAD's answer when reachable
};
// Connects with the timeout, authenticates, selects the db, checks PING and
// loads `script`; resolves ep->host to an address. Blocking: engine creation only.
RedisProbe probe_redis(RedisEndpoint* ep, int64_t timeout_ms, const std::string& script);

struct RedisReply {
  bool ok = false;            // false: error reply, timeout or link failure (see error)
  std::vector<int64_t> ints;  // an integer, or an array's integers
  std::string text;           // a status or bulk string
  std::vector<std::string> strings;  // an array's strings (a pub/sub message)
  std::string error;
};

class RedisLink final : public FdWatcher {
 public:
  using Callback = std::function<void(const RedisReply&)>;
  RedisLink(Backend& backend, TimerWheel& wheel, const Clock& clock, RedisEndpoint ep, int64_t timeout_ms);
  ~RedisLink();  // pending callbacks are called with a failure first
  RedisLink(const RedisLink&) = delete;
  RedisLink& operator=(const RedisLink&) = delete;

  // cb is called exactly once, later (never inside this call), on the loop
  // thread: with the reply, or a failure within the timeout.
  void command(const std::vector<std::string>& argv, Callback cb);
  // EVALSHA, and EVAL of the script itself when Redis answers NOSCRIPT
  // (restarted, flushed), which loads it again.
  void eval(const std::string& script, const std::string& sha, const std::vector<std::string>& keys_args,
            Callback cb);

  // PSUBSCRIBE: cb runs for the confirmation and then for every message
  // (strings: "pmessage", pattern, channel, payload), and once more with a
  // failure when the subscription ends (link lost); subscribe again then.
  // A link that subscribed carries nothing else.
  void psubscribe(const std::string& pattern, Callback cb);

  // Called (loop thread) when a link that was up goes down: lost, reset,
  // garbage, a command's timeout. Its commands' failures follow.
  void on_down(std::function<void()> fn) { on_down_ = std::move(fn); }

  bool connected() const noexcept { return ctx_ != nullptr && up_; }
  // Answers received; readable from any thread (brg_stats in threaded mode).
  uint64_t round_trips() const noexcept { return round_trips_.get(); }
  const std::string& last_error() const noexcept { return last_error_; }

  void on_fd_ready(bool readable, bool writable) noexcept override;

 private:
  struct Pending;
  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_connect(const redisAsyncContext* ac, int status);
  static void on_disconnect(const redisAsyncContext* ac, int status);
  static void ev_add_read(void* p);
  static void ev_del_read(void* p);
  static void ev_add_write(void* p);
  static void ev_del_write(void* p);
  static void ev_cleanup(void* p);
  static void on_timer(void* p) noexcept;
  static void on_fail_timer(void* p) noexcept;

  bool open();
  void send(const std::vector<std::string>& argv, Pending* p);
  void update_interest();
  void fail(const std::string& why);
  void arm();

  Backend& backend_;
  TimerWheel& wheel_;
  const Clock& clock_;
  RedisEndpoint ep_;
  int64_t timeout_ms_;
  redisAsyncContext* ctx_ = nullptr;
  FdWatch* watch_ = nullptr;
  bool want_read_ = false, want_write_ = false, up_ = false;
  std::deque<uint64_t> deadlines_;  // of the commands sent, in reply order (ms)
  Timer timer_;
  // Commands refused while the link pauses get their failure from this
  // timer, so a callback never runs inside command().
  std::vector<std::pair<Callback, std::string>> refused_;
  Timer fail_timer_;
  uint64_t retry_at_ms_ = 0;
  Counter round_trips_;
  std::string last_error_;
  std::function<void()> on_down_;
};

}  // namespace barrage
