-- Read a hold with Redis' own clock, so every API process agrees on whether it has expired.
-- KEYS[1]  hold record (hash)
-- Returns {now in epoch ms, field, value, ...}; just {now} when there is no such hold.
local time = redis.call('TIME')
local record = redis.call('HGETALL', KEYS[1])
table.insert(record, 1, tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000))
return record
