export { RedisBackend } from './redis-backend.js';
export type { RedisBackendOptions, RedisClusterConfig, RedisLockReplication, RedisSentinelConfig } from './redis-backend-options.js';
