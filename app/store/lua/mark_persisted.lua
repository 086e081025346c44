-- Note that SQL holds version ARGV[2] of an appointment.
-- KEYS[1]  appointment record (hash)
-- KEYS[2]  persistence backlog of the hash tag
-- ARGV[1]  appointment id
-- ARGV[2]  the version SQL now has
-- ARGV[3]  id of the appointment it conflicted with in SQL ('' for none)
-- ARGV[4]  epoch s after which the Redis copy may go (SQL keeps the appointment for good)
-- Returns 1 when the backlog entry was cleared, 0 when a newer change is still to persist.
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 1
end
redis.call('HSET', KEYS[1], 'persisted', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'conflict', ARGV[3]) end
redis.call('EXPIREAT', KEYS[1], tonumber(ARGV[4]))
if redis.call('HGET', KEYS[1], 'ver') == ARGV[2] then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 1
end
return 0
