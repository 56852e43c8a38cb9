import { randomUUID } from 'node:crypto';
import { Client } from 'memjs';
import { inject } from 'vitest';
import { requireService } from '@latchkey/test-servers';
import { MemcachedBackend, type MemcachedBackendOptions } from '../../src/index.js';

/** A set of servers the shared suites run against. */
export interface Target {
  readonly name: string;
  readonly servers: string;
}

/**
 * The one-server and two-server targets that the test setup started (or the user's, from
 * `LATCHKEY_MEMCACHED_SERVERS` / `LATCHKEY_MEMCACHED_PAIR_SERVERS`). A missing one is
 * skipped with a printed reason, or fails the run under `LATCHKEY_REQUIRE_SERVICES=1`.
 */
export function targets(suite: string, only?: 'one server' | 'two servers'): Target[] {
  const found: Target[] = [];
  if (only !== 'two servers') {
    const one = inject('memcachedServers');
    if (requireService(`${suite} (one server)`, one, inject('memcachedUnavailable'))) found.push({ name: 'one server', servers: one });
  }
  if (only !== 'one server') {
    const pair = inject('memcachedPairServers');
    if (requireService(`${suite} (two servers)`, pair, inject('memcachedPairUnavailable')))
      found.push({ name: 'two servers', servers: pair });
  }
  return found;
}

/** A key prefix no other test uses. */
export function uniquePrefix(): string {
  return `t-${randomUUID().slice(0, 13)}:`;
}

/** A backend on `target` with a fresh prefix (unless given) and a short deadline. */
export function backendOn(target: Target, options: Omit<MemcachedBackendOptions, 'servers' | 'client'> = {}): MemcachedBackend {
  return new MemcachedBackend({ servers: target.servers, keyPrefix: uniquePrefix(), operationTimeoutMs: 2000, ...options });
}

/** A raw memjs client per server of `target`, to look at what is stored where. */
export function rawClients(servers: string): Map<string, Client> {
  return new Map(servers.split(',').map((server) => [server.trim(), Client.create(server.trim(), { logger: { log: () => undefined } })]));
}

export const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
export const text = (value: Uint8Array | undefined): string | undefined =>
  value === undefined ? undefined : new TextDecoder().decode(value);
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
