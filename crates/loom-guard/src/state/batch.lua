-- batch: settles reservations, then (optionally) decides one request. Settling rides
-- along with the next decision, so a request costs one script call, not two.
-- ARGV[1]: how many settles; then each settle's arguments, then the acquire's, if any.
-- KEYS: each settle's keys, then the acquire's.
--
-- A settle, once per reservation: adjust token limits by (actual - reserved) and move the
-- budgets' reservations from in flight to spent.
--   KEYS: settled marker, one TAT per limit, then per budget: spent hash, held hash, expiry zset.
--   ARGV: limit count, budget count, reservation id, marker ttl (ms);
--         per limit: TAT delta (µs, negative refunds); per budget: amount, slot, slots, spent ttl (ms).
--
-- The acquire: all limits and budgets allow the request, or nothing is taken.
--   KEYS: one TAT per limit, then per budget: spent hash, held hash, expiry zset.
--   ARGV: limit count, budget count, reservation id, reservation ttl (µs);
--         per limit: increment, tolerance (µs); per budget: limit, reserve, slot, slots.
--   Returns {code, index, a, b, ahead...}: code 0 allowed, 1 wait (a = retry after µs),
--   2 never (cost above burst), 3 over budget (a = spent, b = in flight); index is 1-based;
--   ahead = each limit's TAT minus now (after the request when allowed).
-- Without an acquire, returns the number of settles that were new.
local now = server_now()

-- The settle whose keys start after KEYS[k] and arguments after ARGV[a]; returns the next
-- k and a, and 1 when it was new.
local function settle(k, a)
  local limits, budgets = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local id, marker_ms = ARGV[a + 3], ARGV[a + 4]
  local next_k, next_a = k + 1 + limits + 3 * budgets, a + 4 + limits + 4 * budgets
  if not redis.call('SET', KEYS[k + 1], '1', 'NX', 'PX', marker_ms) then
    return next_k, next_a, 0
  end
  for i = 1, limits do
    local delta = tonumber(ARGV[a + 4 + i])
    if delta ~= 0 then
      local key = KEYS[k + 1 + i]
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
  for j = 1, budgets do
    local base = k + 1 + limits + 3 * (j - 1)
    local spent_key, held, expiry = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3]
    local at = a + 4 + limits + 4 * (j - 1)
    local amount, slot, slots = tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3])
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
      keep(spent_key, tonumber(ARGV[at + 4]))
    end
  end
  return next_k, next_a, 1
end

-- The acquire whose keys start after KEYS[k] and arguments after ARGV[a].
local function acquire(k, a)
  local limits, budgets = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local id, ttl = ARGV[a + 3], tonumber(ARGV[a + 4])
  local code, index, wait = 0, 0, 0
  local bases, ahead = {}, {}
  for i = 1, limits do
    local increment, tolerance = tonumber(ARGV[a + 3 + 2 * i]), tonumber(ARGV[a + 4 + 2 * i])
    local base = math.max(tonumber(redis.call('GET', KEYS[k + i]) or '0'), now)
    bases[i] = base
    ahead[i] = base - now
    if code == 0 then
      if increment > tolerance then
        code, index = 2, i
      elseif base + increment > now + tolerance then
        code, index, wait = 1, i, base + increment - tolerance - now
      end
    end
  end
  if code ~= 0 then
    return {code, index, wait, 0, unpack(ahead)}
  end

  local first = a + 5 + 2 * limits
  for j = 1, budgets do
    local base = k + limits + 3 * (j - 1)
    local spent_key, held, expiry = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3]
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
    local new_tat = bases[i] + tonumber(ARGV[a + 3 + 2 * i])
    ahead[i] = new_tat - now
    if new_tat > now then
      redis.call('SET', KEYS[k + i], fmt(new_tat), 'PX', fmt(math.floor((new_tat - now) / 1000) + 1))
    end
  end
  local ttl_ms = math.floor(ttl / 1000) + 1000
  for j = 1, budgets do
    local base = k + limits + 3 * (j - 1)
    local held, expiry = KEYS[base + 2], KEYS[base + 3]
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
end

local k, a, settled = 0, 1, 0
for _ = 1, tonumber(ARGV[1]) do
  local new
  k, a, new = settle(k, a)
  settled = settled + new
end
if a < #ARGV then
  return acquire(k, a)
end
return settled
