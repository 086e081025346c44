-- Finish a hold whose time is up: mark it expired and take it out of every index.
-- KEYS[1]  hold record (hash)
-- KEYS[2]  hold lifetime key
-- KEYS[3]  expiry index of the hash tag
-- ARGV[1]  occupancy key prefix of the hold's hash tag; the record names the clinician
-- ARGV[2]  hold id
-- Returns the cleanup lag in ms (now - expires_at) when this call expired the hold, -1 when there
-- was nothing to do (already ended, or the record is gone), -2 when it has not expired yet.
local record = redis.call('HMGET', KEYS[1], 'status', 'expires', 'cli', 'oend')
if record[1] ~= 'active' then
  redis.call('ZREM', KEYS[3], ARGV[2])
  redis.call('DEL', KEYS[2])
  return -1
end

local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local expires_ms = tonumber(record[2]) * 1000
if now_ms < expires_ms then return -2 end

redis.call('ZREM', ARGV[1] .. record[3], ARGV[2] .. '|' .. record[4] .. '|' .. record[2])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'status', 'expired', 'ended', time[1])
return now_ms - expires_ms
