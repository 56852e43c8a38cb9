/**
 * What the test-server globalSetup provides to tests, typed for vitest's `inject()`.
 *
 * Importing anything from this folder (e.g. `requireService`) brings this augmentation
 * into the TypeScript program, so `inject('redisUrl')` is typed `string | undefined`.
 *
 * @module
 */
import type {} from 'vitest';

/** Services a test run can ask {@link createGlobalSetup} for. */
export type ServiceKind = 'redis' | 'redis-cluster' | 'redis-sentinel' | 'memcached' | 'memcached-pair' | 'mongo' | 'postgres';

/** Which MongoDB-wire server the tests get: ours (`mongod`/`ferretdb`) or the user's (`external`). */
export type ProvidedMongoEngine = 'mongod' | 'ferretdb' | 'external';

/**
 * Keys provided by the test-server globalSetup. A service's value is absent when it was
 * not requested or is unavailable; `…Unavailable` then says why (when requested).
 */
export interface TestServicesContext {
  /** Standalone Redis, `redis://127.0.0.1:P` (or `LATCHKEY_REDIS_URL`). */
  redisUrl?: string;
  redisUnavailable?: string;
  /** Redis Cluster seed nodes, `127.0.0.1:P` each (or `LATCHKEY_REDIS_CLUSTER_NODES`). */
  redisClusterNodes?: string[];
  redisClusterUnavailable?: string;
  /** Sentinels, `127.0.0.1:P` each (or `LATCHKEY_REDIS_SENTINELS`). */
  redisSentinels?: string[];
  /** The monitored master's name (`latchkey`, or `LATCHKEY_REDIS_SENTINEL_MASTER`). */
  redisSentinelMasterName?: string;
  redisSentinelUnavailable?: string;
  /** One memcached server, `127.0.0.1:P` (or `LATCHKEY_MEMCACHED_SERVERS`, which may list several). */
  memcachedServers?: string;
  memcachedUnavailable?: string;
  /** Two memcached servers, `127.0.0.1:P1,127.0.0.1:P2`. */
  memcachedPairServers?: string;
  memcachedPairUnavailable?: string;
  /** MongoDB-wire server, `mongodb://127.0.0.1:P/` (or `LATCHKEY_MONGODB_URL`). */
  mongoUrl?: string;
  /** Which server `mongoUrl` is: FerretDB lacks TTL indexes, transactions and more (see README). */
  mongoEngine?: ProvidedMongoEngine;
  mongoUnavailable?: string;
  /** Throwaway PostgreSQL, `postgres://postgres@127.0.0.1:P/postgres` (or `LATCHKEY_POSTGRES_URL`). */
  postgresUrl?: string;
  postgresUnavailable?: string;
}

declare module 'vitest' {
  // Merged into vitest's ProvidedContext so `inject()` and `project.provide()` are typed.
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  export interface ProvidedContext extends TestServicesContext {}
}
