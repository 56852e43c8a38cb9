import { ValidationError } from '@latchkey/core';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { RedisBackendOptions } from '../redis-backend-options.js';
import type { RedisClient } from './connection-gate.js';

/** Reconnect backoff of built clients: 50 ms doubling to 1 s, forever (the server may come back). */
export function reconnectDelay(attempt: number): number {
  return Math.min(1_000, 50 * 2 ** Math.min(attempt - 1, 10));
}

/** The client a backend talks to, and whether it built (and so must close) it. */
export interface ResolvedClient {
  readonly client: RedisClient;
  readonly owned: boolean;
}

/**
 * Settings that keep every call bounded and stop ioredis from replaying a command later:
 * no offline queue (a command is either written now or fails now), no resend of unanswered
 * commands after a reconnect, pending commands failed at once when the connection drops,
 * and a connect timeout.
 */
function boundedRedisOptions(timeoutMs: number) {
  return {
    // Our commands' replies look the same in both mappings; fixing one keeps the types simple.
    replyMapping: 'legacy' as const,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: timeoutMs,
    retryStrategy: reconnectDelay,
  } satisfies RedisOptions;
}

/** Picks the given client or builds one from `url`, `cluster` or `sentinel` (validated). */
export function resolveClient(options: RedisBackendOptions, timeoutMs: number): ResolvedClient {
  const { client, url, cluster, sentinel, redisOptions } = options;
  const sources = [client, url, cluster, sentinel].filter((source) => source !== undefined).length;
  if (sources > 1) throw new ValidationError('RedisBackend: give at most one of client, url, cluster and sentinel.');
  if (redisOptions !== undefined && (typeof redisOptions !== 'object' || redisOptions === null)) {
    throw new ValidationError('RedisBackend: redisOptions must be an object.');
  }
  if (client !== undefined) {
    if (!isClient(client)) throw new ValidationError('RedisBackend: client must be an ioredis Redis or Cluster instance.');
    if (redisOptions !== undefined)
      throw new ValidationError('RedisBackend: redisOptions apply only to clients the backend builds, not to a given client.');
    const { keyPrefix } = client.options as { keyPrefix?: unknown };
    if (typeof keyPrefix === 'string' && keyPrefix !== '') {
      // ioredis would prepend it in front of our hash tags, so our slot grouping would no longer match the server's.
      throw new ValidationError(
        "RedisBackend: the given client has ioredis' keyPrefix option set; use RedisBackend's keyPrefix option instead.",
      );
    }
    return { client, owned: false };
  }
  if (cluster !== undefined) return { client: buildCluster(cluster, timeoutMs), owned: true };
  if (sentinel !== undefined) return { client: buildSentinel(sentinel, redisOptions, timeoutMs), owned: true };
  if (url !== undefined && (typeof url !== 'string' || !/^rediss?:\/\//.test(url))) {
    throw new ValidationError(`RedisBackend: url must be a redis:// or rediss:// URL, got ${JSON.stringify(url)}.`);
  }
  const built = new Redis(url ?? 'redis://127.0.0.1:6379', { ...redisOptions, ...boundedRedisOptions(timeoutMs) });
  return { client: built, owned: true };
}

function buildCluster(config: RedisBackendOptions['cluster'] & object, timeoutMs: number): Cluster {
  if (typeof config !== 'object' || config === null) throw new ValidationError('RedisBackend: cluster must be an object.');
  const { nodes, options = {} } = config;
  if (!Array.isArray(nodes) || nodes.length === 0 || !nodes.every((node) => typeof node === 'string' && node.length > 0)) {
    throw new ValidationError('RedisBackend: cluster.nodes must be a non-empty array of "host:port" strings.');
  }
  const { lazyConnect: _l, enableOfflineQueue: _e, retryStrategy: _r, ...nodeOptions } = boundedRedisOptions(timeoutMs);
  const clusterOptions = {
    ...options,
    lazyConnect: true,
    enableOfflineQueue: false,
    clusterRetryStrategy: reconnectDelay,
    slotsRefreshTimeout: Math.min(timeoutMs, options.slotsRefreshTimeout ?? timeoutMs),
    redisOptions: { ...options.redisOptions, ...nodeOptions },
  } satisfies ClusterOptions;
  return new Cluster(nodes.map(parseNode), clusterOptions);
}

function buildSentinel(config: RedisBackendOptions['sentinel'] & object, redisOptions: RedisOptions | undefined, timeoutMs: number): Redis {
  if (typeof config !== 'object' || config === null) throw new ValidationError('RedisBackend: sentinel must be an object.');
  const { sentinels, name, sentinelPassword, sentinelUsername } = config;
  const valid =
    Array.isArray(sentinels) &&
    sentinels.length > 0 &&
    sentinels.every((s) => typeof s === 'object' && s !== null && typeof s.host === 'string' && Number.isInteger(s.port));
  if (!valid) throw new ValidationError('RedisBackend: sentinel.sentinels must be a non-empty array of { host, port }.');
  if (typeof name !== 'string' || name.length === 0) throw new ValidationError('RedisBackend: sentinel.name must be a non-empty string.');
  return new Redis({
    ...redisOptions,
    sentinels: sentinels.map(({ host, port }) => ({ host, port })),
    name,
    ...(sentinelPassword === undefined ? {} : { sentinelPassword }),
    ...(sentinelUsername === undefined ? {} : { sentinelUsername }),
    sentinelCommandTimeout: timeoutMs,
    ...boundedRedisOptions(timeoutMs),
  });
}

/** `host:port` or `redis://host:port` → what ioredis' Cluster takes. */
function parseNode(node: string): { host: string; port: number } | string {
  if (/^rediss?:\/\//.test(node)) return node;
  const colon = node.lastIndexOf(':');
  const port = Number(node.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port) || port <= 0 || port > 65_535) {
    throw new ValidationError(`RedisBackend: cluster node ${JSON.stringify(node)} is not "host:port".`);
  }
  return { host: node.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), port };
}

function isClient(value: unknown): value is RedisClient {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return typeof record['status'] === 'string' && typeof record['evalsha'] === 'function' && typeof record['on'] === 'function';
}

/** True for a Cluster client. */
export function isCluster(client: RedisClient): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true;
}

/**
 * Makes the subscriber connections of the release listener: a duplicate of a standalone or
 * Sentinel client (so it follows a failover), or, on Cluster, a plain connection to one
 * master — PUBLISH reaches every node of a cluster — rotating to the next master each time.
 * They never reconnect by themselves and have no offline queue beyond their own SUBSCRIBE.
 */
export function subscriberFactory(client: RedisClient, timeoutMs: number): () => Redis {
  const overrides = {
    replyMapping: 'legacy' as const,
    lazyConnect: true,
    enableOfflineQueue: true,
    autoResubscribe: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: timeoutMs,
    retryStrategy: () => null,
  } satisfies RedisOptions;
  if (!isCluster(client)) return () => client.duplicate(overrides);
  let next = 0;
  return () => {
    const masters = client.nodes('master');
    const node = masters[next++ % Math.max(1, masters.length)];
    if (node === undefined) throw new Error('no cluster node known yet');
    const { host, port } = node.options;
    return new Redis({ ...client.options.redisOptions, host: host ?? '127.0.0.1', port: port ?? 6379, ...overrides });
  };
}
