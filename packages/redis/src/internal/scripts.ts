import { createHash } from 'node:crypto';
import type { RedisClient } from './connection-gate.js';

/** A Lua script run with EVALSHA, falling back to EVAL when the server does not know it. */
export interface LuaScript {
  readonly lua: string;
  readonly sha: string;
  readonly keys: number;
}

function script(keys: number, lua: string): LuaScript {
  return Object.freeze({ lua, keys, sha: createHash('sha1').update(lua).digest('hex') });
}

/**
 * Lua helpers of the lock scripts' waiter queue. Per lock there is a list of waiter ids in
 * arrival order (`queue`) and a hash of each id's deadline in server ms (`entries`); an
 * entry whose waiter stopped refreshing it is skipped once its deadline passed, and both
 * keys expire with the newest entry. A lock handed over to a waiter is free, with `grant`
 * naming that waiter for a claim window: only its acquire takes the lock meanwhile. The lock
 * key itself only ever holds a lease's token, so lease checks are the same as without a queue.
 */
const QUEUE_HELPERS = `local function server_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local function enqueue(queue, entries, waiter, entry_ms, now)
  if redis.call('HSET', entries, waiter, now + tonumber(entry_ms)) == 1 then
    redis.call('RPUSH', queue, waiter)
  end
  redis.call('PEXPIRE', queue, entry_ms)
  redis.call('PEXPIRE', entries, entry_ms)
end
local function hand_over(grant, queue, entries, channel, data_key, claim_ms, now)
  while true do
    local waiter = redis.call('LPOP', queue)
    if not waiter then
      return false
    end
    local deadline = redis.call('HGET', entries, waiter)
    redis.call('HDEL', entries, waiter)
    if deadline and tonumber(deadline) >= now then
      redis.call('SET', grant, waiter, 'PX', claim_ms)
      redis.call('PUBLISH', channel, '@' .. waiter .. ' ' .. data_key)
      return true
    end
  end
end
`;

function acquireScript(fence: string): LuaScript {
  return script(
    5,
    `${QUEUE_HELPERS}local busy = KEYS[1]
if redis.call('EXISTS', KEYS[1]) == 0 then
  local granted = redis.call('GET', KEYS[5])
  busy = granted and granted ~= ARGV[3] and KEYS[5]
end
if busy then
  if ARGV[3] ~= '' then
    enqueue(KEYS[3], KEYS[4], ARGV[3], ARGV[4], server_ms())
  end
  return {0, redis.call('PTTL', busy)}
end
${fence}if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
if ARGV[3] ~= '' then
  if redis.call('HDEL', KEYS[4], ARGV[3]) == 1 then
    redis.call('LREM', KEYS[3], 1, ARGV[3])
  end
  redis.call('DEL', KEYS[5])
end
return {1, redis.call('GET', KEYS[2])}`,
  );
}

/**
 * Acquire. KEYS: lock, fence, queue, entries, grant. ARGV: token, leaseMs (0: never lapses),
 * waiter (this process's waiter id; `''` for a single attempt, which never queues), entryMs.
 * Free, or handed over to this waiter: bumps the fence, takes the lock, leaves the queue and
 * returns `{1, fence}` (the fence as a string, exact beyond 2^53). Held, or handed over to
 * another waiter: queues the waiter once (refreshing its entry's deadline to entryMs from
 * now) and returns `{0, pttl}`, the lock's remaining lease or the grant's claim window (-1:
 * the lease never lapses), so a waiter knows when to look again. (Only a waiting acquire
 * clears a grant it took over; a single attempt can win only while nothing is granted.)
 */
export const ACQUIRE = acquireScript(`redis.call('INCR', KEYS[2])
`);

/**
 * Acquire for replicated locks: {@link ACQUIRE}, but the new fence is at least the server's
 * clock in microseconds (`TIME`), so a new primary that lost the last increments of the fence
 * still hands out larger tokens than the old one did — as long as its clock is not behind
 * the old primary's by more than the failover took. The counter part keeps the fence rising
 * on one server when its clock stands still or steps back. Redis 7 replicates the effects
 * of a script (the `SET` of the fence), never the call to `TIME`.
 */
export const CLOCKED_ACQUIRE = acquireScript(`local fence = redis.call('INCR', KEYS[2])
local time = redis.call('TIME')
local now = time[1] .. string.format('%06d', tonumber(time[2]))
if fence < tonumber(now) then
  redis.call('SET', KEYS[2], now)
end
`);

/**
 * Release. KEYS: lock, queue, entries, grant. ARGV: token, channel, dataKey, requeue (this
 * process's waiter id when more of its waiters wait for the lock, else `''`), entryMs, claimMs.
 * Only when the token holds the lock: deletes it and hands it to the first live waiter in the
 * queue (`grant` names that waiter for claimMs, and `@<waiter> <dataKey>` on the channel tells
 * that waiter alone), queueing `requeue` behind the others, and returns 2; with nobody queued,
 * announces `<token> <dataKey>` to everyone and returns 1. Returns 0 when the token no longer
 * held the lock.
 */
export const RELEASE = script(
  4,
  `${QUEUE_HELPERS}if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
local now = server_ms()
if hand_over(KEYS[4], KEYS[2], KEYS[3], ARGV[2], ARGV[3], ARGV[6], now) then
  if ARGV[4] ~= '' then
    enqueue(KEYS[2], KEYS[3], ARGV[4], ARGV[5], now)
  end
  return 2
end
redis.call('PUBLISH', ARGV[2], ARGV[1] .. ' ' .. ARGV[3])
return 1`,
);

/**
 * Leave the queue. KEYS: queue, entries, grant. ARGV: waiter, channel, dataKey, claimMs.
 * Takes the waiter's entry out of the queue; if the lock was handed over to it meanwhile,
 * hands it on to the next live waiter (2) or lets it go and announces that (1). Returns 0
 * when nothing was handed over to it.
 */
export const LEAVE = script(
  3,
  `${QUEUE_HELPERS}if redis.call('HDEL', KEYS[2], ARGV[1]) == 1 then
  redis.call('LREM', KEYS[1], 1, ARGV[1])
end
if redis.call('GET', KEYS[3]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[3])
if hand_over(KEYS[3], KEYS[1], KEYS[2], ARGV[2], ARGV[3], ARGV[4], server_ms()) then
  return 2
end
redis.call('PUBLISH', ARGV[2], ARGV[1] .. ' ' .. ARGV[3])
return 1`,
);

/**
 * Extend. KEYS: lock. ARGV: token, leaseMs (0: never lapses).
 * Returns 1 when renewed, 0 when the token no longer holds the lock.
 */
export const EXTEND = script(
  1,
  `if redis.call('GET', KEYS[1]) == ARGV[1] then
  if tonumber(ARGV[2]) > 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  else
    redis.call('PERSIST', KEYS[1])
  end
  return 1
end
return 0`,
);

/**
 * Lease-checked write. KEYS: data, lock. ARGV: token, value, ttlMs ('': never expires; '0':
 * expired already, so the key is deleted). Returns 1 when written, 0 when the token no longer
 * holds the lock (nothing written).
 */
export const LOCKED_SET = script(
  2,
  `if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return 0
end
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[2])
elseif tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
else
  redis.call('DEL', KEYS[1])
end
return 1`,
);

/**
 * Lease-checked delete. KEYS: data, lock. ARGV: token.
 * Returns 1 when deleted, 0 when the key was missing, -1 when the token no longer holds the
 * lock (nothing deleted).
 */
export const LOCKED_DELETE = script(
  2,
  `if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return -1
end
return redis.call('DEL', KEYS[1])`,
);

/**
 * Runs `script` in one round trip when the server has it cached (EVALSHA), else — after a
 * restart, a failover or `SCRIPT FLUSH` — sends it in full once (EVAL caches it again).
 * Scripts are routed by their first key, so on Cluster they run on the node of that key's slot.
 */
export async function runScript(client: RedisClient, script: LuaScript, args: readonly (string | Buffer)[]): Promise<unknown> {
  try {
    return await client.evalsha(script.sha, script.keys, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return client.eval(script.lua, script.keys, ...args);
  }
}
