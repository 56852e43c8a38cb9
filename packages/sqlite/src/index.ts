export { PURGE_FAILED_WARNING, SqliteBackend } from './sqlite-backend.js';
export type { SqliteBackendOptions } from './sqlite-backend-options.js';
