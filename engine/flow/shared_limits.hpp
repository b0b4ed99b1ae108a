// The round trips of shared limit keys: for each key, the SharedQuota says
// when to ask and what; this sends it (shared_quota.lua over one RedisLink),
// hands the answer back, and says in one line on stderr when a key falls
// back to its local share and when it rejoins. A second link subscribes to
// the keys' cooldown channels, so a 429 in one process cools the key in all
// of them at once, whatever their leases hold.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "flow/limit_keys.hpp"
#include "net/redis_link.hpp"

namespace barrage {

struct SharedSettings {
  RedisEndpoint endpoint;
  std::string script_sha;  // from the creation probe ("" if Redis was away then)
  std::string name_space = "barrage";
  SharedTuning tuning;
  int64_t timeout_ms = 250;
};

class SharedLimits final : public SharedAsker {
 public:
  SharedLimits(const SharedSettings& s, Backend& backend, TimerWheel& wheel, const Clock& clock, LimitKeys& keys);
  ~SharedLimits();

  void poke(LimitKey& k) noexcept override;
  void forget(LimitKey& k) noexcept override;
  const SharedTuning& tuning() const noexcept override { return settings_.tuning; }

  uint64_t round_trips() const noexcept { return link_.round_trips(); }

 private:
  static void on_ask_timer(void* ctx) noexcept;
  void send(LimitKey& k, const LeaseAsk& a);
  void note_mode(LimitKey& k, bool was_fallen_back);
  std::string redis_key(const LimitKey& k) const;
  void subscribe();
  void on_cooldown(const RedisReply& r);

  SharedSettings settings_;
  TimerWheel& wheel_;
  const Clock& clock_;
  LimitKeys& keys_;
  RedisLink link_;
  RedisLink sub_link_;  // subscribed to the cooldown channels
  bool subscribed_ = false;
  std::unordered_map<std::string, LimitKey*> by_channel_;
  RedisClockMap redis_clock_;  // Redis's TIME on this process's clock
  std::string process_id_;
  bool closing_ = false;
  int64_t fallen_back_keys_ = 0;
};

}  // namespace barrage
