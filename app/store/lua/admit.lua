-- Admit one request of an API key: a GCRA rate limit and, for a new hold, a place among the
-- key's active holds.
-- KEYS[1]  rate state of the key (string: theoretical arrival time, epoch ms)
-- KEYS[2]  active holds of the key (sorted set: hold id by expires_at, epoch ms)
-- ARGV[1]  requests allowed per minute (also the largest burst)
-- ARGV[2]  id of the hold to make room for ('' when the request creates none); already
--          there when a retry under the same Idempotency-Key names its earlier attempt's hold
-- ARGV[3]  most active holds the key may have
-- ARGV[4]  hold lifetime (ms)
-- Returns {verdict, remaining requests, ms until the next request would be allowed}, where
-- verdict is 1 (admitted), 0 (rate limited) or -1 (admitted as a request, but no room for
-- another hold).
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local limit = tonumber(ARGV[1])
local period = 60000
local interval = period / limit

local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now)
local next_tat = tat + interval
if next_tat - now > period then
  return {0, 0, math.ceil(next_tat - period - now)}
end
-- At least 1 ms: with huge limits the interval is lost in the precision of epoch milliseconds.
redis.call('SET', KEYS[1], next_tat, 'PX', math.max(1, math.ceil(next_tat - now)))
local remaining = math.floor((period - (next_tat - now)) / interval)

if ARGV[2] == '' then return {1, remaining, 0} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZSCORE', KEYS[2], ARGV[2]) then return {1, remaining, 0} end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return {-1, remaining, 0} end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[2])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]))
return {1, remaining, 0}
