-- An organisation's appointments whose latest change SQL lacks, as Redis has them: what a list
-- read from SQL must take from here to show every change that was answered.
-- KEYS[1]  persistence backlog of the hash tag
-- ARGV[1]  organisation id
-- ARGV[2]  appointment record key prefix of the hash tag; the backlog names the ids
-- Returns {{field, value, ...}, ...}: the whole record of each backlog appointment of the
-- organisation. Other organisations' (tags are shared) and records already gone (SQL has
-- them; mark_persisted drops the entry) are left out.
local found = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[2] .. id
  if redis.call('HGET', key, 'org') == ARGV[1] then
    table.insert(found, redis.call('HGETALL', key))
  end
end
return found
