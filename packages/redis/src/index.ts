export { RedisBackend } from './redis-backend.js';
export type { RedisBackendOptions, RedisClusterConfig, RedisSentinelConfig } from './redis-backend-options.js';
