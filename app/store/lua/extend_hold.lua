-- Start an active hold's countdown again, within its longest lifetime, on Redis' clock.
-- KEYS[1]  hold record (hash)
-- KEYS[2]  expiry index of the hash tag (sorted set: hold id by expires_at)
-- KEYS[3]  event outbox stream of the hash tag (entry layout: app/events/outbox.py)
-- ARGV[1]  organisation id of the caller
-- ARGV[2]  occupancy key prefix of the hash tag; the record names the clinician
-- ARGV[3]  hold id
-- ARGV[4]  hold time to live (s): the new expiry is now + this ...
-- ARGV[5]  longest lifetime of a hold (s): ... but never later than created + this
-- ARGV[6]  how long the record outlives the hold (s)
-- ARGV[7]  expiry tick key prefix of the hash tag (see create_hold.lua)
-- Returns {'extended', now in epoch ms, field, value, ...} with the whole record after the
-- change, or {outcome} where
-- outcome is 'not_found', 'released', 'confirmed', 'expired' or 'limit' (no later expiry is
-- allowed).
--
-- Every structure that scores the expiry moves in this one step: the occupancy member, which
-- embeds expires-at, is swapped for one with the new expiry, so at no moment is the slot free.
local record = redis.call('HMGET', KEYS[1], 'org', 'status', 'expires', 'cli', 'oend', 'key',
                          'sess', 'ostart', 'created')
if not record[1] or record[1] ~= ARGV[1] then return {'not_found'} end
if record[2] ~= 'active' then return {record[2]} end

local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local expires = tonumber(record[3])
if now_ms >= expires * 1000 then return {'expired'} end

local extended = math.min(tonumber(time[1]) + tonumber(ARGV[4]),
                          tonumber(record[9]) + tonumber(ARGV[5]))
if extended <= expires then return {'limit'} end

local occupancy = ARGV[2] .. record[4]
local seat = record[7] and ('|' .. record[7]) or ''  -- a seat of a group session keeps it
redis.call('ZREM', occupancy, ARGV[3] .. '|' .. record[5] .. '|' .. expires .. seat)
redis.call('ZADD', occupancy, record[8], ARGV[3] .. '|' .. record[5] .. '|' .. extended .. seat)
redis.call('HSET', KEYS[1], 'expires', extended)
redis.call('EXPIRE', KEYS[1], extended - tonumber(time[1]) + tonumber(ARGV[6]))
redis.call('SET', ARGV[7] .. extended, '1', 'PXAT', extended * 1000)
redis.call('ZADD', KEYS[2], extended, ARGV[3])
local extended_record = redis.call('HGETALL', KEYS[1])
redis.call('XADD', KEYS[3], '*', '_event', 'hold.extended', '_subject', ARGV[3],
           unpack(extended_record))
table.insert(extended_record, 1, now_ms)
table.insert(extended_record, 1, 'extended')
return extended_record
