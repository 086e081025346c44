-- Expire the hash tag's holds whose time is up, soonest first, at most ARGV[3] of them.
-- Taking them from the expiry index here, rather than from a list the caller read before,
-- means workers running this at once on one tag never repeat each other's work.
-- KEYS[1]  expiry index of the hash tag (sorted set: hold id by expires_at, epoch s)
-- KEYS[2]  event outbox stream of the hash tag (entry layout: app/events/outbox.py)
-- ARGV[1]  occupancy key prefix of the hash tag; each record names its clinician
-- ARGV[2]  hold record key prefix of the hash tag; the index names the hold
-- ARGV[3]  most holds to take from the index in this call
-- Returns {more, lag, lag, ...}: more is 1 when the call took as many as it could (call again),
-- then the cleanup lag in ms (now - expires_at) of each hold this call expired.
--
-- A hold expires by the clock: every script and reader takes an active record past its
-- expires_at as expired, so its record is left as it is (it goes with its TTL, the retention
-- period after the expiry). Cleaning up is taking it out of the indexes and announcing it: one
-- hold.expired entry for every hold the call expired, their ids and the change (`status`),
-- which each record completes. An entry per hold, each with its record, would double what a
-- burst of expiries costs Redis.
local time = redis.call('TIME')
local now_s = tonumber(time[1])
local now_ms = now_s * 1000 + math.floor(tonumber(time[2]) / 1000)
local limit = tonumber(ARGV[3])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_s, 'LIMIT', 0, limit)

local late, expired, lags, intervals = {}, {}, {}, {}
for _, hold_id in ipairs(due) do
  local record_key = ARGV[2] .. hold_id
  local status, expires, clinician, occupied_end, session =
    unpack(redis.call('HMGET', record_key, 'status', 'expires', 'cli', 'oend', 'sess'))
  if status == 'active' and tonumber(expires) > now_s then
    late[#late + 1] = expires  -- extended past its score: score it again, keep it
    late[#late + 1] = hold_id
  elseif status == 'active' then
    local member = hold_id .. '|' .. occupied_end .. '|' .. expires
    if session then member = member .. '|' .. session end  -- a seat of a group session
    intervals[clinician] = intervals[clinician] or {}
    table.insert(intervals[clinician], member)
    expired[#expired + 1] = hold_id
    lags[#lags + 1] = now_ms - tonumber(expires) * 1000
  end  -- else it ended (or its record went) before: it only leaves the index
end

if #expired > 0 then
  redis.call('XADD', KEYS[2], '*', '_event', 'hold.expired',
             '_subjects', table.concat(expired, ' '), 'status', 'expired')
end
for clinician, members in pairs(intervals) do
  redis.call('ZREM', ARGV[1] .. clinician, unpack(members))
end
-- The due holds are the index's first #due (by score from -inf): removing by rank spares
-- Redis a lookup per id. Any extended past its score goes back in with its new one.
if #due > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, #due - 1) end
if #late > 0 then redis.call('ZADD', KEYS[1], unpack(late)) end
return {#due == limit and 1 or 0, unpack(lags)}
