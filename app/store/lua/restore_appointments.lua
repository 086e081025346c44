-- Give Redis the appointments SQL has, after Redis lost its data (or on first use of a tag).
-- KEYS[1]        marker that the hash tag's appointments were restored
-- KEYS[2i], KEYS[2i+1]  occupancy set of the clinician, and the record, of appointment i
-- ARGV[1]        '1' to set the marker when done, '0' to restore these records only
-- ARGV[1+i]      appointment i's record fields as a JSON object (with id, status, ostart, oend)
-- Returns the number of appointments restored. A record Redis still has is left as it is: it
-- is newer than, or as new as, the SQL row.
local restored = 0
for i = 2, #ARGV do
  local occupancy, key = KEYS[2 * (i - 1)], KEYS[2 * (i - 1) + 1]
  if redis.call('EXISTS', key) == 0 then
    local record = cjson.decode(ARGV[i])
    for field, value in pairs(record) do
      redis.call('HSET', key, field, tostring(value))
    end
    if record['status'] == 'confirmed' then
      local member = record['id'] .. '|' .. record['oend'] .. '|0'
      if record['sess'] then member = member .. '|' .. record['sess'] end
      redis.call('ZADD', occupancy, record['ostart'], member)
    end
    restored = restored + 1
  end
end
if ARGV[1] == '1' then redis.call('SET', KEYS[1], '1') end
return restored
