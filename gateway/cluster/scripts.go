package cluster

import "github.com/redis/go-redis/v9"

// Every script reads the time from Redis TIME (one clock for every lease) and touches only keys
// under the store's hash tag, so it runs atomically on the primary (and in Redis Cluster on one
// slot). Keys, in this order for every script:
//
//	KEYS[1] members  ZSET member id -> lease expiry (ms, Redis time)
//	KEYS[2] holders  HASH shard -> member id (absent: nobody holds it)
//	KEYS[3] epochs   HASH shard -> epoch (never deleted, only raised)
//	KEYS[4] info     prefix of HASH <prefix><member id> (name, addr, joined_ms)
//	KEYS[5] seq      STRING incarnation counter
//	KEYS[6] returning ZSET replica name -> end of its restart grace (ms, Redis time)
//
// A member is live while its expiry is in the future. A shard is held while its holder is live.
// A shard whose holder is not live waits for its holder's replica (by name) while that name is
// returning, i.e. its restart grace has not ended: only a new incarnation of that name claims it.

const luaNow = `
local t = redis.call('TIME')
local nowms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nows = tonumber(t[1])
local function live(id)
  local e = redis.call('ZSCORE', KEYS[1], id)
  return e and tonumber(e) > nowms
end
local function nameof(id)
  return string.match(id, '^(.*)#') or id
end
`

// join: ARGV name, addr, ttl_ms, prune_ms. Creates a new incarnation "<name>#<n>" with a lease,
// ends the name's restart grace (it is back: the shards that waited for it are its own to claim, or,
// if assigned elsewhere now, anyone's), forgets ended graces and members expired for longer than
// prune_ms. Returns {id, expiry_ms}.
var joinScript = redis.NewScript(luaNow + `
local n = redis.call('INCR', KEYS[5])
local id = ARGV[1] .. '#' .. n
local exp = nowms + tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], exp, id)
redis.call('HSET', KEYS[4] .. id, 'name', ARGV[1], 'addr', ARGV[2], 'joined_ms', nowms)
redis.call('ZREM', KEYS[6], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', nowms)
local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', nowms - tonumber(ARGV[4]))
for _, m in ipairs(old) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('DEL', KEYS[4] .. m)
end
return {id, exp}
`)

// renew: ARGV member, ttl_ms, then pairs shard, epoch. Extends the member's lease only while it is
// still live (an expired member must rejoin as a new incarnation: its shards may be someone
// else's). Returns {-1} when the member is not live, else {expiry_ms, lost shard...} where a lost
// shard is one whose holder or epoch is no longer (member, epoch).
var renewScript = redis.NewScript(luaNow + `
if not live(ARGV[1]) then return {-1} end
local exp = nowms + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], 'XX', exp, ARGV[1])
local out = {exp}
for i = 3, #ARGV, 2 do
  local h = redis.call('HGET', KEYS[2], ARGV[i])
  local e = redis.call('HGET', KEYS[3], ARGV[i])
  if h ~= ARGV[1] or e ~= ARGV[i+1] then out[#out+1] = tonumber(ARGV[i]) end
end
return out
`)

// claim: ARGV shard, member, floor. The claimant must be live. A shard nobody holds, or whose
// holder is not live, becomes the claimant's with epoch max(epoch+1, Redis time in s, floor),
// unless it waits for its holder's returning replica and the claimant is another replica.
// Returns {status, epoch, holder}: 1 claimed, 2 already the claimant's (epoch unchanged), 0 held by
// the live holder or waiting for the holder's replica (the holder then says so), -1 claimant not
// live.
var claimScript = redis.NewScript(luaNow + `
if not live(ARGV[2]) then return {-1, 0, ''} end
local h = redis.call('HGET', KEYS[2], ARGV[1])
local e = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
if h == ARGV[2] then return {2, e, h} end
if h and live(h) then return {0, e, h} end
if h and nameof(h) ~= nameof(ARGV[2]) then
  local back = redis.call('ZSCORE', KEYS[6], nameof(h))
  if back and tonumber(back) > nowms then return {0, e, h .. ' (waiting for its replica to return)'} end
end
local ne = math.max(e + 1, nows, tonumber(ARGV[3]))
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], string.format('%d', ne))
return {1, ne, h or ''}
`)

// release: ARGV shard, member, epoch. Compare-and-set: only the holder with the current epoch
// releases; the epoch stays, so the next claim raises it. Returns 1 released, 0 refused.
var releaseScript = redis.NewScript(luaNow + `
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[3] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`)

// bump: ARGV shard, member, epoch. Compare-and-set like release, for a live holder: raises the
// epoch to max(epoch+1, Redis time in s) and returns it (a session used up its 1e6 sequence
// numbers); 0 when refused.
var bumpScript = redis.NewScript(luaNow + `
if not live(ARGV[2]) then return 0 end
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
local e = redis.call('HGET', KEYS[3], ARGV[1])
if e ~= ARGV[3] then return 0 end
local ne = math.max(tonumber(e) + 1, nows)
redis.call('HSET', KEYS[3], ARGV[1], string.format('%d', ne))
return ne
`)

// fence: ARGV shard, member, epoch. Read only: 1 when member is live, holds shard, and the epoch
// is still epoch; else 0.
var fenceScript = redis.NewScript(luaNow + `
if not live(ARGV[2]) then return 0 end
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[3] then return 0 end
return 1
`)

// returning: no ARGV. Returns {name, grace_end_ms, ...} of the replicas whose restart grace has not
// ended.
var returningScript = redis.NewScript(luaNow + `
return redis.call('ZRANGEBYSCORE', KEYS[6], '(' .. nowms, '+inf', 'WITHSCORES')
`)

// live members: no ARGV. Returns {id, expiry_ms, ...} of the live members, oldest expiry first.
var liveScript = redis.NewScript(luaNow + `
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. nowms, '+inf', 'WITHSCORES')
`)

// leave: ARGV member, grace_ms (optional, default 0). Removes the member's lease. With no grace it
// releases every shard the member holds (epochs stay); with a grace its shards keep naming it
// (no longer live) and its replica's name is returning until now + grace_ms: only a new
// incarnation of that name claims them meanwhile. Returns how many shards it held.
var leaveScript = redis.NewScript(luaNow + `
local grace = tonumber(ARGV[2] or '0')
local all = redis.call('HGETALL', KEYS[2])
local n = 0
for i = 1, #all, 2 do
  if all[i+1] == ARGV[1] then
    if grace <= 0 then redis.call('HDEL', KEYS[2], all[i]) end
    n = n + 1
  end
end
if grace > 0 then redis.call('ZADD', KEYS[6], nowms + grace, nameof(ARGV[1])) end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[4] .. ARGV[1])
return n
`)
