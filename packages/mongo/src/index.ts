export { MongoBackend, TTL_INDEX_NAME } from './mongo-backend.js';
export { DEFAULT_LOCK_POLL_INTERVAL_MS, DEFAULT_OPERATION_TIMEOUT_MS, type MongoBackendOptions } from './mongo-backend-options.js';
