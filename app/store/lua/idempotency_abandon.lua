-- Forget an unfinished request under an Idempotency-Key, so a retry runs afresh.
-- KEYS[1]  the key's record (hash: state, fingerprint, owner, ...)
-- ARGV[1]  the id of the attempt that began it
-- Returns 1 when the record was that attempt's unfinished one and is gone, else 0: a finished
-- record, or another attempt's, is never removed.
if redis.call('HGET', KEYS[1], 'state') == 'running'
    and redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
