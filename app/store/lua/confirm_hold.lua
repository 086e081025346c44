-- Turn an active hold into a confirmed appointment that keeps blocking the slot.
-- KEYS[1]  hold record (hash)
-- KEYS[2]  appointment record (hash) to create (its id derived from the Idempotency-Key, if
--          any, so a retry names the same one)
-- KEYS[3]  expiry index of the hash tag
-- KEYS[4]  persistence backlog of the hash tag (sorted set: appointment id by time of change)
-- ARGV[1]  caller's organisation id
-- ARGV[2]  occupancy key prefix of the hold's hash tag; the record names the clinician
-- ARGV[3]  hold id
-- ARGV[4]  appointment id
-- ARGV[5]  token of the request's Idempotency-Key ('' for none), recorded on the hold
-- ARGV[6]  '1' when an earlier attempt of this request may still be running: report the
--          appointment it made, but make none
-- ARGV[7..] the booking's own fields (patient, attendee, notes), as field, value pairs
-- Returns {'confirmed', API key id of the hold, field, value, ...} with the whole appointment
-- record, {'replayed', API key id, field, value, ...} when an earlier attempt with this token
-- confirmed the hold, or {outcome} where outcome is 'not_found', 'released', 'expired',
-- 'already_confirmed' or (ARGV[6] is '1' and nothing was made) 'in_use'.
local record = redis.call('HMGET', KEYS[1], 'org', 'status', 'expires', 'cli', 'oend', 'ostart',
                          'type', 'loc', 'start', 'end', 'key', 'confirmed_by', 'sess')
if not record[1] or record[1] ~= ARGV[1] then
  if ARGV[6] == '1' then return {'in_use'} end
  return {'not_found'}
end
local status = record[2]
if status == 'confirmed' and ARGV[5] ~= '' and record[12] == ARGV[5] then
  local appointment = redis.call('HGETALL', KEYS[2])
  if #appointment > 0 then
    table.insert(appointment, 1, record[11])
    table.insert(appointment, 1, 'replayed')
    return appointment
  end
end
if ARGV[6] == '1' then return {'in_use'} end
if status == 'confirmed' then return {'already_confirmed'} end
if status ~= 'active' then return {status} end

local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if now_ms >= tonumber(record[3]) * 1000 then return {'expired'} end

local occupancy = ARGV[2] .. record[4]
-- A seat of a group session keeps its session key, so the appointment keeps its seat.
local seat = record[13] and ('|' .. record[13]) or ''
redis.call('ZREM', occupancy, ARGV[3] .. '|' .. record[5] .. '|' .. record[3] .. seat)
redis.call('ZADD', occupancy, record[6], ARGV[4] .. '|' .. record[5] .. '|0' .. seat)
redis.call('HSET', KEYS[1], 'status', 'confirmed', 'apt', ARGV[4], 'ended', time[1])
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'confirmed_by', ARGV[5]) end
redis.call('HSET', KEYS[2], 'id', ARGV[4], 'hold', ARGV[3], 'org', record[1], 'cli', record[4],
           'type', record[7], 'loc', record[8], 'start', record[9], 'end', record[10],
           'ostart', record[6], 'oend', record[5], 'status', 'confirmed',
           'created', time[1], 'updated', time[1], 'ver', 1, unpack(ARGV, 7))
if record[13] then redis.call('HSET', KEYS[2], 'sess', record[13]) end
redis.call('ZREM', KEYS[3], ARGV[3])
redis.call('ZADD', KEYS[4], time[1], ARGV[4])
redis.call('XADD', KEYS[5], '*', '_event', 'hold.confirmed', '_subject', ARGV[3],
           unpack(redis.call('HGETALL', KEYS[1])))
local appointment = redis.call('HGETALL', KEYS[2])
redis.call('XADD', KEYS[5], '*', '_event', 'appointment.created',
           '_subject', ARGV[4], unpack(appointment))
table.insert(appointment, 1, record[11])
table.insert(appointment, 1, 'confirmed')
return appointment
