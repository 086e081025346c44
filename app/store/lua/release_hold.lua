-- Release an active hold: its slot is free at once.
-- KEYS[1]  hold record (hash)
-- KEYS[2]  expiry index of the hash tag
-- KEYS[3]  event outbox stream of the hash tag (entry layout: app/events/outbox.py)
-- ARGV[1]  caller's organisation id (another organisation's hold does not exist for it)
-- ARGV[2]  occupancy key prefix of the hold's hash tag; the record names the clinician
-- ARGV[3]  hold id
-- Returns {outcome, API key id of the hold}; outcome is 'released' (now or before),
-- 'not_found', 'expired' or 'confirmed'.
local record = redis.call('HMGET', KEYS[1], 'org', 'status', 'expires', 'cli', 'oend', 'key',
                          'sess')
if not record[1] or record[1] ~= ARGV[1] then return {'not_found', ''} end
local status = record[2]
if status ~= 'active' then return {status, record[6]} end

local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if now_ms >= tonumber(record[3]) * 1000 then return {'expired', record[6]} end

local member = ARGV[3] .. '|' .. record[5] .. '|' .. record[3]
if record[7] then member = member .. '|' .. record[7] end  -- a seat of a group session
redis.call('ZREM', ARGV[2] .. record[4], member)
redis.call('HSET', KEYS[1], 'status', 'released', 'ended', time[1])
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('XADD', KEYS[3], '*', '_event', 'hold.released', '_subject', ARGV[3],
           unpack(redis.call('HGETALL', KEYS[1])))
return {'released', record[6]}
