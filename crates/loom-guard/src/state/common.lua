-- Shared by every loom-guard script. Times are µs from the server's TIME; every number
-- stays below 2^53, so Lua's doubles are exact. Numbers go to Redis through fmt: Redis
-- would print a large Lua number in exponent notation.
local function fmt(n)
  return string.format('%.0f', n)
end

local function server_now()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000000 + tonumber(time[2])
end

-- Extends a key's expiry to at least ms milliseconds from now (never shortens it).
local function keep(key, ms)
  if redis.call('PTTL', key) < ms then
    redis.call('PEXPIRE', key, fmt(ms))
  end
end

-- Drops a budget's expired reservations: HELD maps id -> amount plus '=total', EXPIRY
-- scores ids by when they lapse.
local function sweep(held, expiry, now)
  local expired = redis.call('ZRANGEBYSCORE', expiry, '-inf', fmt(now))
  if #expired == 0 then
    return
  end
  local freed = 0
  for _, id in ipairs(expired) do
    local amount = redis.call('HGET', held, id)
    if amount then
      freed = freed + tonumber(amount)
      redis.call('HDEL', held, id)
    end
  end
  if freed > 0 then
    redis.call('HINCRBY', held, '=total', fmt(-freed))
  end
  redis.call('ZREMRANGEBYSCORE', expiry, '-inf', fmt(now))
end

-- Spend recorded in the sub-windows that still count (slot + slots > current).
local function spent_in(key, slot, slots)
  local fields = redis.call('HGETALL', key)
  local total = 0
  for k = 1, #fields, 2 do
    if tonumber(fields[k]) + slots > slot then
      total = total + tonumber(fields[k + 1])
    end
  end
  return total
end

local function in_flight(held)
  return tonumber(redis.call('HGET', held, '=total') or '0')
end
