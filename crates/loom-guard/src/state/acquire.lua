-- acquire: all limits and budgets allow the request, or nothing is taken.
-- KEYS: one TAT per limit, then per budget: spent hash, held hash, expiry zset.
-- ARGV: limit count, budget count, reservation id, reservation ttl (µs);
--       per limit: increment, tolerance (µs); per budget: limit, reserve, slot, slots.
-- Returns {code, index, a, b, ahead...}: code 0 allowed, 1 wait (a = retry after µs),
-- 2 never (cost above burst), 3 over budget (a = spent, b = in flight); index is 1-based;
-- ahead = each limit's TAT minus now (after the request when allowed).
local now = server_now()
local limits, budgets = tonumber(ARGV[1]), tonumber(ARGV[2])
local id, ttl = ARGV[3], tonumber(ARGV[4])

local code, index, a, b = 0, 0, 0, 0
local bases, ahead = {}, {}
for i = 1, limits do
  local increment, tolerance = tonumber(ARGV[3 + 2 * i]), tonumber(ARGV[4 + 2 * i])
  local base = math.max(tonumber(redis.call('GET', KEYS[i]) or '0'), now)
  bases[i] = base
  ahead[i] = base - now
  if code == 0 then
    if increment > tolerance then
      code, index = 2, i
    elseif base + increment > now + tolerance then
      code, index, a = 1, i, base + increment - tolerance - now
    end
  end
end
if code ~= 0 then
  return {code, index, a, b, unpack(ahead)}
end

local first = 5 + 2 * limits
for j = 1, budgets do
  local spent_key, held, expiry = KEYS[limits + 3 * j - 2], KEYS[limits + 3 * j - 1], KEYS[limits + 3 * j]
  local at = first + 4 * (j - 1)
  local limit, reserve = tonumber(ARGV[at]), tonumber(ARGV[at + 1])
  sweep(held, expiry, now)
  local spent = spent_in(spent_key, tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3]))
  local flying = in_flight(held)
  -- Exhausted refuses even a request that reserves nothing (so a budget of 0 refuses all).
  if spent + flying >= limit or spent + flying + reserve > limit then
    return {3, j, spent, flying}
  end
end

for i = 1, limits do
  local new_tat = bases[i] + tonumber(ARGV[3 + 2 * i])
  ahead[i] = new_tat - now
  if new_tat > now then
    redis.call('SET', KEYS[i], fmt(new_tat), 'PX', fmt(math.floor((new_tat - now) / 1000) + 1))
  end
end
local ttl_ms = math.floor(ttl / 1000) + 1000
for j = 1, budgets do
  local held, expiry = KEYS[limits + 3 * j - 1], KEYS[limits + 3 * j]
  local reserve = tonumber(ARGV[first + 4 * (j - 1) + 1])
  if reserve > 0 then
    redis.call('HSET', held, id, fmt(reserve))
    redis.call('HINCRBY', held, '=total', fmt(reserve))
    redis.call('ZADD', expiry, fmt(now + ttl), id)
    keep(held, ttl_ms)
    keep(expiry, ttl_ms)
  end
end
return {0, 0, 0, 0, unpack(ahead)}
