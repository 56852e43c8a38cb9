export { MemcachedBackend } from './memcached-backend.js';
export type { MemcachedBackendOptions, MemjsClient } from './memcached-options.js';
