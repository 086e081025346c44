-- Finish holds whose time is up: mark each expired and take it out of every index.
-- KEYS[1]        expiry index of the hash tag
-- KEYS[1+i]      record of hold i (all holds share the hash tag)
-- KEYS[#ARGV+1]  event outbox stream of the hash tag (entry layout: app/events/outbox.py)
-- ARGV[1]        occupancy key prefix of the hash tag; each record names its clinician
-- ARGV[1+i]      id of hold i
-- Returns one number per hold: the cleanup lag in ms (now - expires_at) when this call
-- expired it, -1 when there was nothing to do (already ended, or the record is gone), -2 when
-- it has not expired yet.
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local results = {}
for i = 2, #ARGV do
  local hold_id, record_key = ARGV[i], KEYS[i]
  local record = redis.call('HMGET', record_key, 'status', 'expires', 'cli', 'oend', 'sess')
  if record[1] ~= 'active' then
    redis.call('ZREM', KEYS[1], hold_id)
    results[#results + 1] = -1
  elseif now_ms < tonumber(record[2]) * 1000 then
    results[#results + 1] = -2
  else
    local member = hold_id .. '|' .. record[4] .. '|' .. record[2]
    if record[5] then member = member .. '|' .. record[5] end  -- a seat of a group session
    redis.call('ZREM', ARGV[1] .. record[3], member)
    redis.call('ZREM', KEYS[1], hold_id)
    redis.call('HSET', record_key, 'status', 'expired', 'ended', time[1])
    redis.call('XADD', KEYS[#ARGV + 1], '*', '_event', 'hold.expired',
               '_subject', hold_id, unpack(redis.call('HGETALL', record_key)))
    results[#results + 1] = now_ms - tonumber(record[2]) * 1000
  end
end
return results
