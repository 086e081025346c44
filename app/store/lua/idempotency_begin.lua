-- Start a request under an Idempotency-Key, or find out about the first one.
-- KEYS[1]  the key's record (hash: state, fingerprint, owner, status, content_type, body)
-- ARGV[1]  fingerprint of this request's body
-- ARGV[2]  how long an unfinished first request holds the key (ms), should its process die
-- ARGV[3]  this attempt's own id, so that only it can abandon the record
-- Returns {'new'} when this request goes ahead, {'in_use'} while the first is still running,
-- {'reused'} when the key came first with another body, or {'replay', status, content type,
-- body} with the first response.
local record = redis.call('HMGET', KEYS[1], 'state', 'fingerprint', 'status', 'content_type',
                          'body')
if not record[1] then
  redis.call('HSET', KEYS[1], 'state', 'running', 'fingerprint', ARGV[1], 'owner', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'new'}
end
if record[2] ~= ARGV[1] then return {'reused'} end
if record[1] == 'running' then return {'in_use'} end
return {'replay', record[3], record[4], record[5]}
