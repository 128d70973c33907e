-- settle: once per reservation, adjust token limits by (actual - reserved) and move the
-- budgets' reservations from in flight to spent.
-- KEYS: settled marker, one TAT per limit, then per budget: spent hash, held hash, expiry zset.
-- ARGV: limit count, budget count, reservation id, marker ttl (ms);
--       per limit: TAT delta (µs, negative refunds); per budget: amount, slot, slots, spent ttl (ms).
-- Returns 1 when settled now, 0 when it had been already.
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[4]) then
  return 0
end
local now = server_now()
local limits, budgets = tonumber(ARGV[1]), tonumber(ARGV[2])
local id = ARGV[3]

for i = 1, limits do
  local delta = tonumber(ARGV[4 + i])
  if delta ~= 0 then
    local key = KEYS[1 + i]
    local tat = tonumber(redis.call('GET', key) or '0')
    local new_tat
    if delta > 0 then
      new_tat = math.max(tat, now) + delta
    else
      new_tat = tat + delta
    end
    if new_tat > now then
      redis.call('SET', key, fmt(new_tat), 'PX', fmt(math.floor((new_tat - now) / 1000) + 1))
    else
      redis.call('DEL', key)
    end
  end
end

local first = 5 + limits
for j = 1, budgets do
  local base = 1 + limits + 3 * (j - 1)
  local spent_key, held, expiry = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3]
  local at = first + 4 * (j - 1)
  local amount, slot, slots = tonumber(ARGV[at]), tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  sweep(held, expiry, now)
  local reserved = redis.call('HGET', held, id)
  if reserved then
    redis.call('HDEL', held, id)
    redis.call('HINCRBY', held, '=total', fmt(-tonumber(reserved)))
    redis.call('ZREM', expiry, id)
  end
  if amount > 0 then
    redis.call('HINCRBY', spent_key, fmt(slot), fmt(amount))
    if slots > 1 then
      local fields = redis.call('HKEYS', spent_key)
      for _, field in ipairs(fields) do
        if tonumber(field) + slots <= slot then
          redis.call('HDEL', spent_key, field)
        end
      end
    end
    keep(spent_key, tonumber(ARGV[at + 3]))
  end
end
return 1
