/**
 * The servers a README block may use: it reads the address from an environment variable
 * (`process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'`), and the tool sets that variable to a
 * throwaway server from @latchkey/test-servers when it runs the block.
 *
 * @module
 */
import type { ServiceKind, TestServicesContext } from '@latchkey/test-servers';

/** One environment variable blocks may read, the server behind it and its value. */
interface ServiceVariable {
  readonly kind: ServiceKind;
  readonly value: (provided: TestServicesContext) => string | undefined;
}

/** The variables the tool sets, by name. */
export const SERVICE_VARIABLES: Readonly<Record<string, ServiceVariable>> = {
  REDIS_URL: { kind: 'redis', value: (p) => p.redisUrl },
  REDIS_CLUSTER_NODES: { kind: 'redis-cluster', value: (p) => p.redisClusterNodes?.join(',') },
  REDIS_SENTINELS: { kind: 'redis-sentinel', value: (p) => p.redisSentinels?.join(',') },
  REDIS_SENTINEL_MASTER: { kind: 'redis-sentinel', value: (p) => p.redisSentinelMasterName },
  MEMCACHED_SERVERS: { kind: 'memcached', value: (p) => p.memcachedServers },
  MONGODB_URL: { kind: 'mongo', value: (p) => p.mongoUrl },
  DATABASE_URL: { kind: 'postgres', value: (p) => p.postgresUrl },
};

/** The service variables `code` reads (`process.env.NAME` or `process.env['NAME']`). */
export function variablesRead(code: string): string[] {
  const names = [...code.matchAll(/process\.env(?:\.(\w+)|\[\s*['"](\w+)['"]\s*\])/g)].map((m) => m[1] ?? m[2] ?? '');
  return [...new Set(names)].filter((name) => name in SERVICE_VARIABLES);
}

/** The services the blocks' code needs. */
export function kindsNeeded(codes: readonly string[]): ServiceKind[] {
  return [...new Set(codes.flatMap((code) => variablesRead(code).map((name) => SERVICE_VARIABLES[name]?.kind as ServiceKind)))];
}
