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
 * Acquire. KEYS: lock, fence. ARGV: token, leaseMs (0: never lapses).
 * Free: bumps the fence, takes the lock and returns `{1, fence}` (the fence as a string, exact
 * beyond 2^53). Held: returns `{0, pttl}`, the lock's remaining lease (-1: it never lapses),
 * so a waiter knows when to look again.
 */
export const ACQUIRE = script(
  2,
  `if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, redis.call('PTTL', KEYS[1])}
end
redis.call('INCR', KEYS[2])
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return {1, redis.call('GET', KEYS[2])}`,
);

/**
 * Acquire for replicated locks: {@link ACQUIRE}, but the new fence is at least the server's
 * clock in microseconds (`TIME`), so a new primary that lost the last increments of the fence
 * still hands out larger tokens than the old one did — as long as its clock is not behind
 * the old primary's by more than the failover took. The counter part keeps the fence rising
 * on one server when its clock stands still or steps back. Redis 7 replicates the effects
 * of a script (the `SET` of the fence), never the call to `TIME`.
 */
export const CLOCKED_ACQUIRE = script(
  2,
  `if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, redis.call('PTTL', KEYS[1])}
end
local fence = redis.call('INCR', KEYS[2])
local time = redis.call('TIME')
local now = time[1] .. string.format('%06d', tonumber(time[2]))
if fence < tonumber(now) then
  redis.call('SET', KEYS[2], now)
end
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return {1, redis.call('GET', KEYS[2])}`,
);

/**
 * Release. KEYS: lock. ARGV: token, channel, message.
 * Deletes the lock only when the token holds it, and then announces the release.
 * Returns 1 when released, 0 when the token no longer held it.
 */
export const RELEASE = script(
  1,
  `if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0`,
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
