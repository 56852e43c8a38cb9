/**
 * Vitest globalSetup that starts throwaway servers for a test run and provides their
 * addresses to tests.
 *
 * @example
 * ```ts
 * // packages/redis/test/global-setup.ts
 * import { createGlobalSetup } from '@latchkey/test-servers';
 * export default createGlobalSetup(['redis', 'redis-cluster']);
 * ```
 *
 * @module
 */
import type { TestProject } from 'vitest/node';
import type { ServerHandle } from './handle.js';
import { startMemcached } from './memcached.js';
import { startMongo } from './mongo.js';
import { startPostgres } from './postgres.js';
import type { ServiceKind, TestServicesContext } from './provided-context.js';
import { startRedisCluster } from './redis-cluster.js';
import { SENTINEL_MASTER_NAME, startRedisSentinel } from './redis-sentinel.js';
import { startRedis } from './redis.js';
import { servicesRequired } from './require-service.js';

export type { ServiceKind, TestServicesContext } from './provided-context.js';
export { requireService } from './require-service.js';

/** Started (or user-supplied) services. */
export interface StartedServices {
  /** Values to provide to tests (JSON-serialisable). */
  readonly provided: TestServicesContext;
  /** Why a requested kind is unavailable, per kind. */
  readonly unavailable: Partial<Record<ServiceKind, string>>;
  /** The servers we started (none for user-supplied ones). */
  readonly handles: readonly ServerHandle[];
  /** Stops every server we started. */
  stop(): Promise<void>;
}

interface KindResult {
  readonly provided: TestServicesContext;
  readonly handles: readonly ServerHandle[];
}

const UNAVAILABLE_KEY = {
  redis: 'redisUnavailable',
  'redis-cluster': 'redisClusterUnavailable',
  'redis-sentinel': 'redisSentinelUnavailable',
  memcached: 'memcachedUnavailable',
  'memcached-pair': 'memcachedPairUnavailable',
  mongo: 'mongoUnavailable',
  postgres: 'postgresUnavailable',
} as const satisfies Record<ServiceKind, keyof TestServicesContext>;

function env(name: string): string | undefined {
  const v = process.env[name]?.trim();
  return v === undefined || v === '' ? undefined : v;
}

function list(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

async function startKind(kind: ServiceKind): Promise<KindResult> {
  switch (kind) {
    case 'redis': {
      const url = env('LATCHKEY_REDIS_URL');
      if (url !== undefined) return { provided: { redisUrl: url }, handles: [] };
      const h = await startRedis();
      return { provided: { redisUrl: h.url }, handles: [h] };
    }
    case 'redis-cluster': {
      const nodes = env('LATCHKEY_REDIS_CLUSTER_NODES');
      if (nodes !== undefined) return { provided: { redisClusterNodes: list(nodes) }, handles: [] };
      const h = await startRedisCluster();
      return { provided: { redisClusterNodes: h.nodes }, handles: [h] };
    }
    case 'redis-sentinel': {
      const sentinels = env('LATCHKEY_REDIS_SENTINELS');
      if (sentinels !== undefined) {
        const name = env('LATCHKEY_REDIS_SENTINEL_MASTER') ?? SENTINEL_MASTER_NAME;
        return { provided: { redisSentinels: list(sentinels), redisSentinelMasterName: name }, handles: [] };
      }
      const h = await startRedisSentinel();
      return { provided: { redisSentinels: h.sentinels, redisSentinelMasterName: h.masterName }, handles: [h] };
    }
    case 'memcached': {
      const servers = env('LATCHKEY_MEMCACHED_SERVERS');
      if (servers !== undefined) return { provided: { memcachedServers: servers }, handles: [] };
      const h = await startMemcached();
      return { provided: { memcachedServers: h.url }, handles: [h] };
    }
    case 'memcached-pair': {
      const pair =
        env('LATCHKEY_MEMCACHED_PAIR_SERVERS') ??
        (list(env('LATCHKEY_MEMCACHED_SERVERS') ?? '').length >= 2 ? env('LATCHKEY_MEMCACHED_SERVERS') : undefined);
      if (pair !== undefined) return { provided: { memcachedPairServers: pair }, handles: [] };
      const started = await Promise.allSettled([startMemcached(), startMemcached()]);
      const handles = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const failed = started.find((r) => r.status === 'rejected');
      if (failed !== undefined) {
        await Promise.allSettled(handles.map((h) => h.stop()));
        throw failed.reason;
      }
      return { provided: { memcachedPairServers: handles.map((h) => h.url).join(',') }, handles };
    }
    case 'mongo': {
      const url = env('LATCHKEY_MONGODB_URL');
      if (url !== undefined) return { provided: { mongoUrl: url, mongoEngine: 'external' }, handles: [] };
      const h = await startMongo();
      return { provided: { mongoUrl: h.url, mongoEngine: h.engine }, handles: [h] };
    }
    case 'postgres': {
      const url = env('LATCHKEY_POSTGRES_URL');
      if (url !== undefined) return { provided: { postgresUrl: url }, handles: [] };
      const h = await startPostgres();
      return { provided: { postgresUrl: h.url }, handles: [h] };
    }
  }
}

/**
 * Starts the requested services in parallel (or takes the user's from `LATCHKEY_*`
 * variables). A kind that cannot start is reported in `unavailable` and printed with
 * console.warn — unless `LATCHKEY_REQUIRE_SERVICES=1`, where this stops everything it
 * started and throws.
 *
 * Environment: `LATCHKEY_REDIS_URL`, `LATCHKEY_REDIS_CLUSTER_NODES` (comma-separated),
 * `LATCHKEY_REDIS_SENTINELS` + `LATCHKEY_REDIS_SENTINEL_MASTER`, `LATCHKEY_MEMCACHED_SERVERS`,
 * `LATCHKEY_MEMCACHED_PAIR_SERVERS` (else `LATCHKEY_MEMCACHED_SERVERS` when it lists two or
 * more), `LATCHKEY_MONGODB_URL`, `LATCHKEY_POSTGRES_URL`.
 *
 * @param kinds - The services to start.
 */
export async function startServices(kinds: readonly ServiceKind[]): Promise<StartedServices> {
  const unique = [...new Set(kinds)];
  const results = await Promise.allSettled(unique.map((kind) => startKind(kind)));
  const provided: TestServicesContext = {};
  const unavailable: Partial<Record<ServiceKind, string>> = {};
  const handles: ServerHandle[] = [];
  results.forEach((result, i) => {
    const kind = unique[i] as ServiceKind;
    if (result.status === 'fulfilled') {
      Object.assign(provided, result.value.provided);
      handles.push(...result.value.handles);
    } else {
      const reason = result.reason instanceof Error ? result.reason.message : String(result.reason);
      unavailable[kind] = reason;
      provided[UNAVAILABLE_KEY[kind]] = reason;
    }
  });
  const stop = async (): Promise<void> => {
    await Promise.allSettled(handles.map((h) => h.stop()));
  };
  const failed = Object.entries(unavailable);
  if (failed.length > 0 && servicesRequired()) {
    await stop();
    throw new Error(
      `LATCHKEY_REQUIRE_SERVICES=1 but these services could not be started:\n` +
        failed.map(([kind, why]) => `- ${kind}: ${why}`).join('\n'),
    );
  }
  for (const [kind, why] of failed) {
    console.warn(`[test-servers] ${kind} unavailable, its suites will be skipped: ${why}`);
  }
  if (process.env['LATCHKEY_TEST_SERVERS_VERBOSE'] === '1') {
    console.warn(`[test-servers] ${JSON.stringify(provided)}`);
  }
  return { provided, unavailable, handles, stop };
}

/**
 * A vitest globalSetup function: starts `kinds` (see {@link startServices}), provides
 * their addresses with `project.provide` (keys in {@link TestServicesContext}) and
 * returns the teardown that stops them.
 *
 * @param kinds - The services the package's tests need.
 */
export function createGlobalSetup(kinds: readonly ServiceKind[]): (project: TestProject) => Promise<() => Promise<void>> {
  return async (project) => {
    const services = await startServices(kinds);
    for (const [key, value] of Object.entries(services.provided) as Array<[keyof TestServicesContext, never]>) {
      project.provide(key, value);
    }
    return () => services.stop();
  };
}
