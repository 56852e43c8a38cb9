import { randomUUID } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { inject } from 'vitest';
import { requireService } from '@latchkey/test-servers';
import { RedisBackend, type RedisBackendOptions } from '../../src/index.js';

/** A Redis deployment the integration suites run against. */
export interface Target {
  readonly name: 'standalone' | 'cluster';
  /** How to reach it, as backend options. */
  readonly connection: Pick<RedisBackendOptions, 'url' | 'cluster'>;
  /** A fresh backend with a unique key prefix (closed by {@link closeAll}). */
  create(options?: Omit<RedisBackendOptions, 'url' | 'cluster' | 'client' | 'sentinel'>): RedisBackend;
  /** A plain ioredis client on the same deployment, for looking behind the backend's back. */
  admin(): Redis | Cluster;
  /** Every master (one for standalone), for per-node checks such as INFO commandstats. */
  masters(): Promise<Redis[]>;
}

const opened: { close(): Promise<unknown> | void }[] = [];

/** Closes every backend and admin client the targets opened. */
export async function closeAll(): Promise<void> {
  await Promise.all(opened.splice(0).map((item) => item.close()));
}

function uniquePrefix(): string {
  return `t-${randomUUID().slice(0, 8)}:`;
}

/** The deployments that are available in this run; a missing one is reported (or fails under LATCHKEY_REQUIRE_SERVICES=1). */
export function availableTargets(suite: string): Target[] {
  const targets: Target[] = [];
  const url = inject('redisUrl');
  if (requireService(`${suite} on standalone Redis`, url, inject('redisUnavailable'))) {
    targets.push({
      name: 'standalone',
      connection: { url },
      create: (options = {}) => track(new RedisBackend({ keyPrefix: uniquePrefix(), ...options, url })),
      admin: () => trackClient(new Redis(url)),
      masters: async () => [trackClient(new Redis(url))],
    });
  }
  const nodes = inject('redisClusterNodes');
  if (requireService(`${suite} on Redis Cluster`, nodes, inject('redisClusterUnavailable'))) {
    const seeds = nodes.map((node) => ({
      host: node.slice(0, node.lastIndexOf(':')),
      port: Number(node.slice(node.lastIndexOf(':') + 1)),
    }));
    targets.push({
      name: 'cluster',
      connection: { cluster: { nodes } },
      create: (options = {}) => track(new RedisBackend({ keyPrefix: uniquePrefix(), ...options, cluster: { nodes } })),
      admin: () => trackClient(new Cluster(seeds)),
      masters: async () => {
        const cluster = trackClient(new Cluster(seeds));
        await cluster.ping();
        return cluster
          .nodes('master')
          .map((node) => trackClient(new Redis({ host: node.options.host ?? '127.0.0.1', port: node.options.port ?? 0 })));
      },
    });
  }
  return targets;
}

function track(backend: RedisBackend): RedisBackend {
  opened.push(backend);
  return backend;
}

function trackClient<T extends Redis | Cluster>(client: T): T {
  opened.push({ close: () => void client.disconnect() });
  return client;
}

/** Sum of `INFO commandstats` calls of `command` over `nodes`. */
export async function commandCalls(nodes: readonly Redis[], command: string): Promise<number> {
  let total = 0;
  for (const node of nodes) {
    const info = await node.info('commandstats');
    const match = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info);
    total += Number(match?.[1] ?? 0);
  }
  return total;
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Deletes every key under `prefix` on every master of `target`. */
export async function dropPrefix(target: Target, prefix: string): Promise<void> {
  for (const node of await target.masters()) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1_000);
      cursor = next;
      if (keys.length > 0) {
        const pipeline = node.pipeline();
        for (const key of keys) pipeline.unlink(key);
        await pipeline.exec();
      }
    } while (cursor !== '0');
    node.disconnect();
  }
}
