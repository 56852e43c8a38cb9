export { PostgresBackend, MAX_KEY_BYTES } from './postgres-backend.js';
export type { PostgresBackendOptions } from './postgres-backend-options.js';
