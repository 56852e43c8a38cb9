import { createHash } from 'node:crypto';
import type { LuaScript } from './scripts.js';

const LUA = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[2])
elseif tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
else
  redis.call('DEL', KEYS[1])
end
return 1`;

/**
 * Compare-and-set of a value. KEYS: data. ARGV: expected bytes, new bytes, ttlMs (`''`: never
 * expires, so a plain `SET` drops any earlier expiry; `'0'`: expired already, so the key is
 * deleted). Lua compares the strings byte for byte; a missing or expired key reads as `false`,
 * which equals no string. Returns 1 when written, 0 when the stored bytes were not `expected`.
 */
export const COMPARE_AND_SET: LuaScript = Object.freeze({ lua: LUA, keys: 1, sha: createHash('sha1').update(LUA).digest('hex') });
