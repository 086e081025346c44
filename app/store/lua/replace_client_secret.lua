-- Give a hold a new client_secret: a create whose first answer (with the first secret) was lost.
-- KEYS[1]  hold record (hash)
-- ARGV[1]  SHA-256 of the new secret
-- Returns 1 when the hold exists and now has it, 0 when there is no such hold.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'sec', ARGV[1])
return 1
