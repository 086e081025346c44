-- Cancel a confirmed appointment: its slot is free at once. Cancelling twice changes nothing.
-- KEYS[1]  appointment record (hash)
-- KEYS[2]  persistence backlog of the hash tag
-- KEYS[3]  event outbox stream of the hash tag (entry layout: app/events/outbox.py)
-- ARGV[1]  caller's organisation id
-- ARGV[2]  occupancy key prefix of the appointment's hash tag
-- ARGV[3]  appointment id
-- ARGV[4]  reason ('' for none)
-- Returns {'ok', field, value, ...} with the whole record, or {'not_found'}.
local record = redis.call('HMGET', KEYS[1], 'org', 'status', 'cli', 'oend', 'sess')
if not record[1] or record[1] ~= ARGV[1] then return {'not_found'} end

if record[2] == 'confirmed' then
  local time = redis.call('TIME')
  local member = ARGV[3] .. '|' .. record[4] .. '|0'
  if record[5] then member = member .. '|' .. record[5] end  -- a seat of a group session
  redis.call('ZREM', ARGV[2] .. record[3], member)
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'updated', time[1])
  if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'cancel_reason', ARGV[4]) end
  redis.call('HINCRBY', KEYS[1], 'ver', 1)
  redis.call('ZADD', KEYS[2], time[1], ARGV[3])
  redis.call('XADD', KEYS[3], '*', '_event', 'appointment.cancelled',
             '_subject', ARGV[3], unpack(redis.call('HGETALL', KEYS[1])))
end
local appointment = redis.call('HGETALL', KEYS[1])
table.insert(appointment, 1, 'ok')
return appointment
