import type { Cluster, Redis } from 'ioredis';
import { isCluster } from './clients.js';
import type { RedisClient } from './connection-gate.js';
import type { KeyLayout } from './key-layout.js';

/** Keys asked of each `SCAN` step: large enough to keep round trips few, small enough not to stall the server. */
export const SCAN_COUNT = 1000;

/**
 * The `SCAN MATCH` pattern of this prefix's data keys: the prefix (glob characters escaped)
 * followed by anything ending in `}`. Lock, fence and queue keys end in `:lock`, `:fence`,
 * `:queue` or `:waiters`, so the server already leaves them out; {@link isDataKey} settles the
 * rest (a longer prefix that starts with this one).
 */
export function dataKeyPattern(layout: KeyLayout): string {
  return `${layout.prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*}`;
}

const DIGESTED = /^#\{[0-9a-f]{40}\}$/;

/**
 * True when `redisKey` is a data key of `layout`'s prefix: `<prefix>{K}` with `K` brace-free
 * and non-empty, or a digested `<prefix>#{<sha1>}`. Never a lock, fence or queue key, and never
 * a key of another prefix that merely starts with this one.
 */
export function isDataKey(layout: KeyLayout, redisKey: string): boolean {
  if (!redisKey.startsWith(layout.prefix)) return false;
  const rest = redisKey.slice(layout.prefix.length);
  return DIGESTED.test(rest) || layout.storedKeyOf(redisKey) !== undefined;
}

/**
 * The servers whose keyspaces together hold every key: the client itself on a single server
 * (or Sentinel's master), every master of a Cluster. Replicas are left out: they copy a master.
 */
export function scanNodes(client: RedisClient): Redis[] {
  return isCluster(client) ? (client as Cluster).nodes('master') : [client as Redis];
}
