-- key_write: writes one run-time key record and bumps the keys' version, so every
-- instance reloads. KEYS: keys hash, version counter. ARGV: id, new JSON, expected old JSON
-- ('' = the id must be new). Returns 1 when written, 0 when the record was not as expected.
local current = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[3] == '' then
  if current then
    return 0
  end
elseif current ~= ARGV[3] then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[2])
return 1
