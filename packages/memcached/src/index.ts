export { MemcachedBackend } from './memcached-backend.js';
export type { MemcachedBackendOptions, MemjsClient } from './memcached-backend-options.js';
