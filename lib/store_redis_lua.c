/*
 * store_redis_lua - the Lua scripts of the Redis backend, one per
 * operation, so each is atomic on the server.
 *
 * A counter is three keys that share the {hash tag} of its name (so a
 * script stays in one Redis Cluster slot); store_redis.c says what they
 * hold.  Every script takes the time from the server (TIME), and every
 * number it writes goes through string.format("%d"), so no float
 * notation reaches a key.
 */
#include "config.h"

#include "store_redis_int.h"

/* The server's clock in ms: one clock for every host sharing it. */
#define TG_REDIS_NOW \
	"local tm = redis.call('TIME')\n" \
	"local now = tonumber(tm[1]) * 1000 +\n" \
	"  math.floor(tonumber(tm[2]) / 1000)\n"

/*
 * A counter's three keys (one tag, so one slot): KEYS[1] the hash of
 * entries, with "n" the sequence and "u" the sum of the amounts in it;
 * KEYS[2] the entries by admission time; KEYS[3] the pending ones by
 * lapse time.  Pruning takes the departed and lapsed entries off the
 * two sorted sets' fronts, so each operation costs O(log n) plus what
 * it removes, however many entries the window holds.  Lua numbers are
 * doubles, exact for integers below 2^53.
 */
#define TG_REDIS_PRUNE \
	"local H, Z, P = KEYS[1], KEYS[2], KEYS[3]\n" \
	"local used = tonumber(redis.call('HGET', H, 'u') or '0')\n" \
	"local dropped = 0\n" \
	"local function drop(id)\n" \
	"  local v = redis.call('HGET', H, id)\n" \
	"  if v then\n" \
	"    used = used - tonumber(string.match(v, '^(%d+)'))\n" \
	"    redis.call('HDEL', H, id)\n" \
	"  end\n" \
	"  redis.call('ZREM', Z, id)\n" \
	"  redis.call('ZREM', P, id)\n" \
	"  dropped = dropped + 1\n" \
	"end\n" \
	"local gone = redis.call('ZRANGEBYSCORE', Z, '-inf',\n" \
	"  string.format('%d', now - win))\n" \
	"for _, id in ipairs(gone) do drop(id) end\n" \
	"gone = redis.call('ZRANGEBYSCORE', P, '-inf',\n" \
	"  string.format('%d', now))\n" \
	"for _, id in ipairs(gone) do drop(id) end\n" \
	"if used < 0 then used = 0 end\n" \
	"if dropped > 0 then\n" \
	"  redis.call('HSET', H, 'u', string.format('%d', used))\n" \
	"end\n"

/* The i-th member of a sorted set and its score + add, or nil. */
#define TG_REDIS_AT \
	"local function at(key, i, add)\n" \
	"  local r = redis.call('ZRANGE', key, i, i, 'WITHSCORES')\n" \
	"  if #r == 0 then return nil, nil end\n" \
	"  return r[1], tonumber(r[2]) + add\n" \
	"end\n"

/* An entry leaves an amount: ARGV[1] the id; -> 1, or 0 unknown. */
#define TG_REDIS_ENTRY \
	"if not string.match(ARGV[1], '^%d+$') then return 0 end\n" \
	"local H, Z, P = KEYS[1], KEYS[2], KEYS[3]\n" \
	"local v = redis.call('HGET', H, ARGV[1])\n" \
	"if not v then return 0 end\n" \
	"local a, e, t = string.match(v, '^(%d+) (%d+) (%d+)$')\n" \
	TG_REDIS_NOW \
	"local lapsed = tonumber(e) > 0 and tonumber(e) <= now\n" \
	"local function remove()\n" \
	"  redis.call('HDEL', H, ARGV[1])\n" \
	"  redis.call('ZREM', Z, ARGV[1])\n" \
	"  redis.call('ZREM', P, ARGV[1])\n" \
	"  redis.call('HINCRBY', H, 'u', -tonumber(a))\n" \
	"end\n"

static const char *const tg_redis_scripts[TG_REDIS_NSCRIPTS] = {
	/* reserve: ARGV window limit amount ttl -> admitted used remaining
	 * retry id; ttl 0 commits at once */
	TG_REDIS_NOW
	"local win, lim = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
	"local amt, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])\n"
	TG_REDIS_PRUNE
	"if amt <= lim and used + amt <= lim then\n"
	"  if redis.call('HEXISTS', H, 'n') == 0 then\n"
	"    redis.call('HSET', H, 'n', string.format('%d', now * 1000))\n"
	"  end\n"
	"  local id = redis.call('HINCRBY', H, 'n', 1)\n"
	"  local sid = string.format('%d', id)\n"
	/* ttl 0: committed at once, so lapse 0 and not pending */
	"  local e = 0\n"
	"  if ttl > 0 then e = now + ttl end\n"
	"  redis.call('HSET', H, sid,\n"
	"    string.format('%d %d %d', amt, e, now),\n"
	"    'u', string.format('%d', used + amt))\n"
	"  redis.call('ZADD', Z, string.format('%d', now), sid)\n"
	"  if ttl > 0 then\n"
	"    redis.call('ZADD', P, string.format('%d', e), sid)\n"
	"  end\n"
	"  for _, k in ipairs(KEYS) do\n"
	"    redis.call('PEXPIRE', k, string.format('%d', win))\n"
	"  end\n"
	"  return {1, used + amt, lim - used - amt, 0, id}\n"
	"end\n"
	/* Refused: when the earliest departures free enough.  An entry
	 * leaves at the earlier of admission + window and its lapse, so
	 * the two sets are merged by that time. */
	"local retry = win\n"
	"if amt <= lim then\n"
	TG_REDIS_AT
	"  local need, freed, seen = used + amt - lim, 0, {}\n"
	"  local zi, pi = 0, 0\n"
	"  local zid, zl = at(Z, 0, win)\n"
	"  local pid, pl = at(P, 0, 0)\n"
	"  while zid or pid do\n"
	"    local id, l\n"
	"    if pid and (not zid or pl <= zl) then\n"
	"      id, l = pid, pl\n"
	"      pi = pi + 1\n"
	"      pid, pl = at(P, pi, 0)\n"
	"    else\n"
	"      id, l = zid, zl\n"
	"      zi = zi + 1\n"
	"      zid, zl = at(Z, zi, win)\n"
	"    end\n"
	"    if not seen[id] then\n"
	"      seen[id] = true\n"
	"      local v = redis.call('HGET', H, id)\n"
	"      if v then\n"
	"        freed = freed + tonumber(string.match(v, '^(%d+)'))\n"
	"      end\n"
	"      if freed >= need then\n"
	"        retry = l - now\n"
	"        break\n"
	"      end\n"
	"    end\n"
	"  end\n"
	"end\n"
	"local rem = lim - used\n"
	"if rem < 0 then rem = 0 end\n"
	"return {0, used, rem, retry, 0}\n",

	/* commit: ARGV id -> 1 done, 0 unknown or lapsed */
	TG_REDIS_ENTRY
	"if tonumber(e) == 0 then return 1 end\n"
	"if lapsed then\n"
	"  remove()\n"
	"  return 0\n"
	"end\n"
	"redis.call('HSET', H, ARGV[1], a .. ' 0 ' .. t)\n"
	"redis.call('ZREM', P, ARGV[1])\n"
	"return 1\n",

	/* refund: ARGV id -> 1 given back, 0 unknown or lapsed */
	TG_REDIS_ENTRY
	"remove()\n"
	"if lapsed then return 0 end\n"
	"return 1\n",

	/* usage: ARGV window limit -> used remaining frees_in; pruning is
	 * all it writes */
	TG_REDIS_NOW
	"local win, lim = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
	TG_REDIS_PRUNE
	TG_REDIS_AT
	"local _, zl = at(Z, 0, win)\n"
	"local _, pl = at(P, 0, 0)\n"
	"local first = zl\n"
	"if pl and (not first or pl < first) then first = pl end\n"
	"local rem = lim - used\n"
	"if rem < 0 then rem = 0 end\n"
	"if first == nil then return {used, rem, 0} end\n"
	"return {used, rem, first - now}\n",

	/* incr: ARGV delta ttl -> the new value */
	"local v = redis.call('INCRBY', KEYS[1], ARGV[1])\n"
	"if tonumber(ARGV[2]) > 0 and redis.call('PTTL', KEYS[1]) == -1 then\n"
	"  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
	"end\n"
	"return v\n",
};

/* tg_redis_script_text - the Lua text of a script */
const char *
tg_redis_script_text(enum tg_redis_script which)
{
	return tg_redis_scripts[which];
}
