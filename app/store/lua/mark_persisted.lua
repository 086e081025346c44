-- Note that SQL holds version ARGV[2] of an appointment, and the conflict marks SQL now has.
-- KEYS[1]  appointment record (hash)
-- KEYS[2]  persistence backlog of the hash tag
-- KEYS[3..] records of appointments (same clinician, same tag) whose mark SQL decided again
-- ARGV[1]  appointment id
-- ARGV[2]  the version SQL now has
-- ARGV[3]  id of the appointment it conflicts with in SQL ('' for none)
-- ARGV[4]  epoch s after which the Redis copy may go (SQL keeps the appointment for good)
-- ARGV[5..] the new mark of each record of KEYS[3..] ('' for none)
-- Returns 1 when the backlog entry was cleared, 0 when a newer change is still to persist.
local function set_mark(key, mark)
  if mark == '' then
    redis.call('HDEL', key, 'conflict')
  else
    redis.call('HSET', key, 'conflict', mark)
  end
end

for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then set_mark(KEYS[i], ARGV[i + 2]) end
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 1
end
-- Jobs for successive versions may finish in either order: the persisted version only rises.
if tonumber(ARGV[2]) > tonumber(redis.call('HGET', KEYS[1], 'persisted') or '0') then
  redis.call('HSET', KEYS[1], 'persisted', ARGV[2])
end
set_mark(KEYS[1], ARGV[3])
redis.call('EXPIREAT', KEYS[1], tonumber(ARGV[4]))
if redis.call('HGET', KEYS[1], 'ver') == ARGV[2] then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 1
end
return 0
