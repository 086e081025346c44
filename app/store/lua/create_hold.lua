-- Create a hold unless its occupied interval overlaps a live interval of the clinician, or,
-- for a seat of a group session, unless the session is full.
-- KEYS[1]  occupancy sorted set of the clinician. Score: occupied start (epoch s). Member:
--          "<hold or appointment id>|<occupied end, epoch s>|<expires at, epoch s; 0 = never>"
--          and, for a seat of a group session, "|<session key>" after that
-- KEYS[2]  hold record (hash)
-- KEYS[3]  expiry index of the hash tag (sorted set: hold id by expires_at)
-- KEYS[4]  marker that the hash tag's appointments were restored from SQL
-- KEYS[5]  event outbox stream of the hash tag (entry layout: app/events/outbox.py)
-- ARGV[1]  hold id
-- ARGV[2]  occupied start (epoch s)
-- ARGV[3]  occupied end (epoch s)
-- ARGV[4]  hold lifetime (s)
-- ARGV[5]  how long the record stays readable after the hold expires (s)
-- ARGV[6]  expiry tick key prefix of the hash tag: the tick of the hold's expiry second is
--          set to expire then, so Redis announces it (one key for every hold of the tag
--          expiring in that second, rather than a key per hold)
-- ARGV[7]  '1' when an earlier attempt of this request (same Idempotency-Key) may still be
--          running: report the hold it made, but make none
-- ARGV[8]  session key of a group session, '' for an exclusive hold
-- ARGV[9]  seats of the session (1 for an exclusive hold)
-- ARGV[10..] the hold record's fields, as field, value pairs
-- Returns {1, created_at} when held, {0, id of a conflicting hold or appointment} when taken,
-- {4, id of one of its seats} when the group session is full, {-1, ''} when this Redis has
-- not yet been given the tag's appointments from SQL, {2, now (epoch ms), field, value, ...}
-- when the hold exists already (an id derived from an Idempotency-Key: an earlier attempt of
-- this request made it), {3, ''} when ARGV[7] is '1' and it does not.
--
-- Live intervals never overlap one another, except the seats of one session, which share one
-- interval exactly; so sorted by start they are sorted by end too, and the live interval with
-- the greatest start before our end is the only one that can overlap us. Expired holds are
-- skipped (and removed) on the way, which makes expiry exact without a worker.
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local made = redis.call('HGETALL', KEYS[2])
if #made > 0 then return {2, now_ms, unpack(made)} end
if ARGV[7] == '1' then return {3, ''} end
if redis.call('EXISTS', KEYS[4]) == 0 then return {-1, ''} end

local occupied_start, occupied_end = tonumber(ARGV[2]), tonumber(ARGV[3])
local session, seats = ARGV[8], tonumber(ARGV[9])
local batch_size = 16

local function parse(member)
  local id, ends, expires, rest = string.match(member, '^([^|]+)|(%d+)|(%d+)(.*)$')
  return id, tonumber(ends), tonumber(expires), string.sub(rest, 2)
end

local function is_live(expires)
  return expires == 0 or now_ms < expires * 1000
end

-- The first live interval below our end decides: free, a seat of our own session, or in the way.
local expired, conflict, full, joins_session, decided, offset = {}, nil, nil, false, false, 0
repeat
  local batch = redis.call('ZREVRANGEBYSCORE', KEYS[1], '(' .. occupied_end, '-inf',
                           'WITHSCORES', 'LIMIT', offset, batch_size)
  for i = 1, #batch, 2 do
    local member, starts = batch[i], tonumber(batch[i + 1])
    local id, ends, expires, member_session = parse(member)
    if not is_live(expires) then
      expired[#expired + 1] = member
    else
      local same_interval = starts == occupied_start and ends == occupied_end
      if session ~= '' and member_session == session and same_interval then
        joins_session = true
      elseif ends > occupied_start then
        conflict = id
      end
      decided = true
      break
    end
  end
  offset = offset + #batch / 2
until decided or #batch < 2 * batch_size

if joins_session then
  local taken = 0
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], occupied_start, occupied_start)) do
    local id, _, expires, member_session = parse(member)
    if not is_live(expires) then
      expired[#expired + 1] = member
    elseif member_session == session then
      taken = taken + 1
      if taken >= seats then full = id end
    end
  end
end

if #expired > 0 then redis.call('ZREM', KEYS[1], unpack(expired)) end
if conflict then return {0, conflict} end
if full then return {4, full} end

local created = tonumber(time[1])
local expires = created + tonumber(ARGV[4])
local member = ARGV[1] .. '|' .. occupied_end .. '|' .. expires
if session ~= '' then member = member .. '|' .. session end
redis.call('ZADD', KEYS[1], occupied_start, member)
redis.call('HSET', KEYS[2], 'created', created, 'expires', expires, 'status', 'active',
           unpack(ARGV, 10))
if session ~= '' then redis.call('HSET', KEYS[2], 'sess', session) end
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[4]) + tonumber(ARGV[5]))
redis.call('SET', ARGV[6] .. expires, '1', 'PXAT', expires * 1000)
redis.call('ZADD', KEYS[3], expires, ARGV[1])
redis.call('XADD', KEYS[5], '*', '_event', 'hold.created', '_subject', ARGV[1],
           unpack(redis.call('HGETALL', KEYS[2])))
return {1, created}
