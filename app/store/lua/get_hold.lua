-- Read a hold with Redis' own clock, so every API process agrees on whether it has expired.
-- KEYS[1]  hold record (hash)
-- ARGV     the record's fields to read, in the order the caller wants them
-- Returns {now in epoch ms, value of each field (nil where absent)}: every value nil when
-- there is no such hold.
local time = redis.call('TIME')
local values = redis.call('HMGET', KEYS[1], unpack(ARGV))
table.insert(values, 1, tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000))
return values
