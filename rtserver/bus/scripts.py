"""The Lua scripts of the Redis bus: what must happen at once happens in one script.

Redis runs a script alone, so a seq and the stream position it names are handed out together,
and two nodes publishing to one room interleave whole batches, never halves.
"""

from __future__ import annotations

from typing import Final

#: KEYS seq, events, epoch, writers; ARGV node, batch, maxlen, new epoch, ttl ms, event...
#: Returns {epoch, first seq}. A batch a node already published (its reply was lost and it
#: retried) is not published again: the seq it got the first time is returned.
PUBLISH: Final = """
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[4]
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
  redis.call('SET', KEYS[3], epoch)
end
local done = redis.call('HGET', KEYS[4], ARGV[1])
if done then
  local sep = string.find(done, ':', 1, true)
  if string.sub(done, 1, sep - 1) == ARGV[2] then
    return {epoch, tonumber(string.sub(done, sep + 1))}
  end
end
local first = 0
for i = 6, #ARGV do
  local seq = redis.call('INCR', KEYS[1])
  if first == 0 then first = seq end
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], seq .. '-0', 'e', ARGV[i], 'n', ARGV[1])
end
redis.call('HSET', KEYS[4], ARGV[1], ARGV[2] .. ':' .. first)
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end
return {epoch, first}
"""

#: KEYS seq, events, epoch, writers; ARGV new epoch, count, ttl ms.
#: Returns {epoch, head, newest events first}: what a node needs to start a copy of a room.
OPEN: Final = """
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
  redis.call('SET', KEYS[3], epoch, 'PX', ARGV[3])
end
local head = tonumber(redis.call('GET', KEYS[1]) or '0')
return {epoch, head, redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[2])}
"""

#: KEYS lease; ARGV holder, ttl ms. 1 while ``holder`` holds the lease (renewed), else 0.
RENEW: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

#: KEYS lease; ARGV holder. Let go of the lease if ``holder`` still holds it.
RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

#: KEYS presence, changes; ARGV node, op (j|u|l), participant, entry, maxlen, ttl ms.
PRESENCE: Final = """
local field = ARGV[1] .. '|' .. ARGV[3]
if ARGV[2] == 'l' then
  redis.call('HDEL', KEYS[1], field)
else
  redis.call('HSET', KEYS[1], field, ARGV[4])
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'n', ARGV[1], 'o', ARGV[2],
  'p', ARGV[3], 'e', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return 1
"""

#: KEYS presence, changes; ARGV node, maxlen. Remove a gone node's participants, as leaves.
PURGE_NODE: Final = """
local prefix = ARGV[1] .. '|'
local gone = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, #prefix) == prefix then
    redis.call('HDEL', KEYS[1], field)
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'n', ARGV[1], 'o', 'l',
      'p', string.sub(field, #prefix + 1), 'e', '')
    gone = gone + 1
  end
end
return gone
"""

#: KEYS counter; ARGV amount, ttl ms. Returns {the counter after adding ``amount``, ms left};
#: the first add of a window starts its clock.
COUNT: Final = """
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return {n, redis.call('PTTL', KEYS[1])}
"""
