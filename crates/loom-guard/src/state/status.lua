-- status: spend and in-flight amounts of budgets (expired reservations swept first).
-- KEYS: per budget: spent hash, held hash, expiry zset. ARGV: per budget: slot, slots.
-- Returns {spent, in flight, ...}.
local now = server_now()
local out = {}
for j = 1, #KEYS / 3 do
  local spent_key, held, expiry = KEYS[3 * j - 2], KEYS[3 * j - 1], KEYS[3 * j]
  sweep(held, expiry, now)
  out[2 * j - 1] = spent_in(spent_key, tonumber(ARGV[2 * j - 1]), tonumber(ARGV[2 * j]))
  out[2 * j] = in_flight(held)
end
return out
