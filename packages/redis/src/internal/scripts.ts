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
 * arrival order (`queue`) and a hash (`entries`) giving each id `<refreshed> <token> <leaseMs>`:
 * when (server ms) the waiter last refreshed its entry, the token it will hold the lock with,
 * and the lease it asks for. An entry not refreshed within entryMs is skipped, and both keys
 * expire entryMs after the newest refresh. A hand-over bumps the fence, sets the lock to the
 * waiter's token with its lease (a lease of 0 gets claimMs until the waiter claims it) and
 * publishes `@<waiter>/<token>/<fence>/<ms since its refresh> <dataKey>` on the waiter's own
 * channel (`<channel>@<waiter>`), so only that process is woken; when that channel has no
 * subscriber on this server (a subscriber on another Cluster node, or a backend that does not
 * listen there) it goes to the shared channel too, where only that waiter acts on it. The lock
 * key only ever holds a lease's token, so lease checks are unchanged.
 */
const QUEUE_HELPERS = `local function server_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local function enqueue(queue, entries, waiter, token, lease_ms, entry_ms, now)
  local entry = string.format('%.0f', now) .. ' ' .. token .. ' ' .. lease_ms
  if redis.call('HSET', entries, waiter, entry) == 1 then
    redis.call('RPUSH', queue, waiter)
  end
  redis.call('PEXPIRE', queue, entry_ms)
  redis.call('PEXPIRE', entries, entry_ms)
end
local function dequeue(queue, entries, waiter)
  if redis.call('HDEL', entries, waiter) == 1 then
    redis.call('LREM', queue, 1, waiter)
  end
end
local function bump_fence(fence, clocked)
  local value = redis.call('INCR', fence)
  if clocked == '1' then
    local time = redis.call('TIME')
    local now = time[1] .. string.format('%06d', tonumber(time[2]))
    if value < tonumber(now) then
      redis.call('SET', fence, now)
    end
  end
  return redis.call('GET', fence)
end
local function hand_over(lock, fence, queue, entries, channel, data_key, entry_ms, claim_ms, clocked, now)
  while true do
    local waiter = redis.call('LPOP', queue)
    if not waiter then
      return false
    end
    local entry = redis.call('HGET', entries, waiter)
    redis.call('HDEL', entries, waiter)
    if entry then
      local refreshed, token, lease_ms = string.match(entry, '^(%d+) (%S+) (%d+)$')
      refreshed = tonumber(refreshed)
      if refreshed and refreshed + tonumber(entry_ms) >= now then
        local granted = bump_fence(fence, clocked)
        local px = tonumber(lease_ms)
        if px == 0 then
          px = claim_ms
        end
        redis.call('SET', lock, token, 'PX', px)
        local message = '@' .. waiter .. '/' .. token .. '/' .. granted .. '/' .. string.format('%.0f', now - refreshed) .. ' ' .. data_key
        if redis.call('PUBLISH', channel .. '@' .. waiter, message) == 0 then
          redis.call('PUBLISH', channel, message)
        end
        return true
      end
    end
  end
end
`;

function acquireScript(fence: string): LuaScript {
  return script(
    4,
    `${QUEUE_HELPERS}local holder = redis.call('GET', KEYS[1])
if holder and holder == ARGV[1] then
  if tonumber(ARGV[2]) > 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  else
    redis.call('PERSIST', KEYS[1])
  end
  dequeue(KEYS[3], KEYS[4], ARGV[3])
  return {1, redis.call('GET', KEYS[2])}
end
if holder then
  if ARGV[3] ~= '' then
    enqueue(KEYS[3], KEYS[4], ARGV[3], ARGV[1], ARGV[2], ARGV[4], server_ms())
  end
  return {0, redis.call('PTTL', KEYS[1])}
end
${fence}if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
if ARGV[3] ~= '' then
  dequeue(KEYS[3], KEYS[4], ARGV[3])
end
return {1, redis.call('GET', KEYS[2])}`,
  );
}

/**
 * Acquire. KEYS: lock, fence, queue, entries. ARGV: token, leaseMs (0: never lapses), waiter
 * (this backend's waiter id; `''` for a single attempt, which never queues), entryMs.
 * Free: bumps the fence, takes the lock, leaves the queue and returns `{1, fence}` (the fence
 * as a string, exact beyond 2^53). Already handed over to this token: claims it (renewing it
 * for leaseMs from now, a write that a following `WAIT` covers) and returns the same. Held:
 * queues the waiter once (refreshing its entry: now, token, leaseMs) and returns `{0, pttl}`,
 * the lock's remaining lease (-1: it never lapses), so a waiter knows when to look again.
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
 * Release. KEYS: lock, fence, queue, entries. ARGV: token, channel, dataKey, requeue (this
 * backend's waiter id when more of its waiters wait, else `''`), requeueToken, requeueLeaseMs,
 * entryMs, claimMs, clocked (`'1'`: fences as in {@link CLOCKED_ACQUIRE}), keep (`'1'`: this
 * backend may keep the lock for its next waiter although others are queued).
 * Only when the token holds the lock. With `requeue` and either `keep` or nobody queued: hands
 * it to this backend's next waiter (bumps the fence, sets requeueToken with requeueLeaseMs) and
 * returns `{3, fence, queued}`, queued being how many backends wait. Else hands it to the first
 * live waiter in the queue (see the queue helpers above), queueing `requeue` behind the others,
 * and returns 2; with nobody queued, deletes the lock, announces `<token> <dataKey>` to everyone
 * and returns 1. Returns 0 when the token no longer held the lock.
 */
export const RELEASE = script(
  4,
  `${QUEUE_HELPERS}if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[4] ~= '' then
  local queued = redis.call('LLEN', KEYS[3])
  if ARGV[10] == '1' or queued == 0 then
    local granted = bump_fence(KEYS[2], ARGV[9])
    if tonumber(ARGV[6]) > 0 then
      redis.call('SET', KEYS[1], ARGV[5], 'PX', ARGV[6])
    else
      redis.call('SET', KEYS[1], ARGV[5])
    end
    return {3, granted, queued}
  end
end
local now = server_ms()
if hand_over(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[2], ARGV[3], ARGV[7], ARGV[8], ARGV[9], now) then
  if ARGV[4] ~= '' then
    enqueue(KEYS[3], KEYS[4], ARGV[4], ARGV[5], ARGV[6], ARGV[7], now)
  end
  return 2
end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], ARGV[1] .. ' ' .. ARGV[3])
return 1`,
);

/**
 * Leave the queue. KEYS: lock, fence, queue, entries. ARGV: waiter, token, channel, dataKey,
 * entryMs, claimMs, clocked. Takes the waiter's entry out of the queue; if the lock was handed
 * over to its token meanwhile, hands it on to the next live waiter (2) or frees it and
 * announces that (1). Returns 0 when nothing was handed over to it.
 */
export const LEAVE = script(
  4,
  `${QUEUE_HELPERS}dequeue(KEYS[3], KEYS[4], ARGV[1])
if redis.call('GET', KEYS[1]) ~= ARGV[2] then
  return 0
end
if hand_over(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], server_ms()) then
  return 2
end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[3], ARGV[2] .. ' ' .. ARGV[4])
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
 * Compare-and-set of a value. KEYS: data. ARGV: expected bytes, new bytes, ttlMs (`''`: never
 * expires, so a plain `SET` drops any earlier expiry; `'0'`: expired already, so the key is
 * deleted). Lua compares the strings byte for byte; a missing or expired key reads as `false`,
 * which equals no string. Returns 1 when written, 0 when the stored bytes were not `expected`.
 */
export const COMPARE_AND_SET = script(
  1,
  `if redis.call('GET', KEYS[1]) ~= ARGV[1] then
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
