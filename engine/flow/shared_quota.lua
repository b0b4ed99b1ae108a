-- barrage's shared quota: one limit key's request and token buckets as GCRA
-- state (the "theoretical arrival time", in Redis's own microseconds), its
-- cooldown, and the set of live processes. One call does everything a
-- process needs in one round trip: give back or charge units, tighten to a
-- server's remaining count, start a cooldown, and reserve a lease.
--
-- A lease reserves up to max units whose GCRA instants fall within the
-- horizon; the caller spends unit j (1-based) no earlier than
-- base_us + j * interval after the answer, so units used across all
-- processes never beat the bucket, whatever the lease size.
--
-- KEYS[1] request bucket  KEYS[2] token bucket  KEYS[3] cooldown (also the
-- channel a new cooldown is published on)  KEYS[4] live set
-- ARGV[1] process id      ARGV[2] horizon_us    ARGV[3] live ttl ms  ARGV[4] cooldown ms to start (0: none)
-- ARGV[5..10]  requests: interval_us (0: no bucket), burst, adjust, min, max, clamp (-1: none)
-- ARGV[11..16] tokens:   the same
-- Returns {granted requests, request base_us, granted tokens, token base_us,
--          wait_us (0: granted), cooldown left ms, live processes, now_us}
-- (now_us: Redis's clock, which the bases count from; each process maps it
-- to its own clock).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local horizon = tonumber(ARGV[2])
local live_ttl = tonumber(ARGV[3])

redis.call('ZADD', KEYS[4], now + live_ttl * 1000, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
redis.call('PEXPIRE', KEYS[4], live_ttl * 2)
local live = redis.call('ZCARD', KEYS[4])

local cool = tonumber(ARGV[4])
if cool > 0 and redis.call('PTTL', KEYS[3]) < cool then
  redis.call('SET', KEYS[3], '1', 'PX', cool)
  -- Processes holding leases hear of it now, not at their next round trip.
  redis.call('PUBLISH', KEYS[3], cool)
end
local cool_left = redis.call('PTTL', KEYS[3])
if cool_left < 0 then cool_left = 0 end

-- Reads one bucket and applies adjust and clamp; nil when it has no limit.
local function open(key, base)
  local interval = tonumber(ARGV[base])
  if interval <= 0 then return nil end
  local b = {key = key, interval = interval, burst = tonumber(ARGV[base + 1]),
             min = tonumber(ARGV[base + 3]), max = tonumber(ARGV[base + 4])}
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  tat = tat + tonumber(ARGV[base + 2]) * interval
  if tat < now then tat = now end
  local clamp = tonumber(ARGV[base + 5])
  if clamp >= 0 then
    local lo = now + (b.burst - clamp) * interval
    if tat < lo then tat = lo end
  end
  b.tat = tat
  return b
end

-- The instant unit j of a reservation may be spent (GCRA: the bucket holds
-- burst units). A take larger than the burst waits for a full bucket.
local function ready(b, j)
  if j > b.burst then j = b.burst end
  local at = b.tat + (j - b.burst) * b.interval
  if at < now then at = now end
  return at
end

-- How many units (min..max) fit in the horizon; 0 and the wait otherwise.
-- No more than the caller's fair share of the horizon (1/live of it): a
-- process that last saw fewer live processes would otherwise reserve what
-- the others need, up to a horizon ahead.
local function lease(b)
  if b == nil or b.max <= 0 then return 0, 0 end
  local share = math.floor(horizon / b.interval / live)
  if share < 1 then share = 1 end
  if b.max > share then b.max = math.max(share, b.min) end
  local first = ready(b, math.max(b.min, 1))
  if b.min > 0 and first > now + horizon then return 0, first - now - horizon end
  local fit = math.floor((now + horizon - b.tat) / b.interval + b.burst + 1e-9)
  local g = math.min(b.max, fit)
  if g < b.min or b.min > b.burst then g = b.min end
  if g < 0 then g = 0 end
  return g, 0
end

local rq = open(KEYS[1], 5)
local tk = open(KEYS[2], 11)
local gr, wr, gt, wt = 0, 0, 0, 0
if cool_left == 0 then
  gr, wr = lease(rq)
  gt, wt = lease(tk)
end
local wait = math.max(wr, wt)
if wait > 0 then gr, gt = 0, 0 end

-- The reservation's base: unit j may be spent base_us + j * interval after
-- now. A take larger than the burst is spent whole once the bucket is full.
local function commit(b, g)
  if b == nil then return 0 end
  local base = b.tat - b.burst * b.interval - now
  if b.min > b.burst then base = ready(b, b.burst) - now - g * b.interval end
  b.tat = b.tat + g * b.interval
  local ttl = math.ceil((b.tat - now) / 1000) + 1000
  redis.call('SET', b.key, string.format('%.0f', b.tat), 'PX', ttl)
  return math.floor(base)
end
local orq = commit(rq, gr)
local otk = commit(tk, gt)
return {gr, orq, gt, otk, math.ceil(wait), cool_left, live, now}
