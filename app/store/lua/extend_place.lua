-- Keep an extended hold's place among its API key's active holds until its new expiry.
-- KEYS[1]  active holds of the key (sorted set: hold id by expires_at, epoch ms)
-- ARGV[1]  hold id
-- ARGV[2]  the hold's new expires_at (epoch ms)
-- Returns 1 when the place was kept longer, 0 when the hold has no place (freed already).
-- The score only rises and no place is added, so a late or repeated call is harmless.
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', 'GT', ARGV[2], ARGV[1])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl = redis.call('PTTL', KEYS[1])
-- admit.lua gives the set one hold lifetime to live; an extended hold may outlive that.
if ttl >= 0 and now + ttl < tonumber(ARGV[2]) then
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
end
return 1
