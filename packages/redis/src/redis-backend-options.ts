import { ValidationError } from '@latchkey/core';
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';

/** Where the Sentinels of a monitored master are, and its name. */
export interface RedisSentinelConfig {
  /** The Sentinels to ask for the current master. */
  readonly sentinels: readonly { readonly host: string; readonly port: number }[];
  /** The master group name the Sentinels monitor. */
  readonly name: string;
  /** Password for the Sentinels themselves (not for Redis; use `redisOptions.password`). */
  readonly sentinelPassword?: string;
  /** Username for the Sentinels themselves. */
  readonly sentinelUsername?: string;
}

/** The seed nodes of a Redis Cluster, and extra ioredis Cluster options. */
export interface RedisClusterConfig {
  /** Seed nodes, `host:port` each (or `redis://host:port`); the rest are discovered. */
  readonly nodes: readonly string[];
  /**
   * Further ioredis `Cluster` options (for example `natMap`, `scaleReads`, or
   * `redisOptions: { password, tls }`). The backend's settings that keep every call bounded
   * (see the README) take precedence.
   */
  readonly options?: ClusterOptions;
}

/**
 * Replicated locks: how many replicas must have a lock change before the backend reports it.
 * See {@link RedisBackendOptions.lockReplication}.
 */
export interface RedisLockReplication {
  /**
   * Replicas (of the primary that serves the key) that must acknowledge an acquire, an
   * extend, and a locked write or delete — the `numreplicas` of `WAIT`. A whole number of
   * at least 1; use every replica of the primary (or of each Cluster primary) for locks that
   * survive the failover to any of them.
   */
  readonly replicas: number;
  /**
   * How long to wait for those acknowledgements, in ms — the `timeout` of `WAIT`. Must be
   * below `operationTimeoutMs`, so the verdict arrives within the call's deadline.
   * @default half of `operationTimeoutMs`
   */
  readonly timeoutMs?: number;
}

/**
 * Options of {@link RedisBackend}. Give at most one of `client`, `url`, `cluster` and
 * `sentinel`; with none the backend connects to `redis://127.0.0.1:6379`.
 */
export interface RedisBackendOptions {
  /**
   * A ready-made ioredis client (`Redis`, including one connected through Sentinel, or
   * `Cluster`). The backend uses it as configured and does not close it on `close()`.
   * For the strongest guarantees configure it with `enableOfflineQueue: false`,
   * `maxRetriesPerRequest: 0` and `autoResendUnfulfilledCommands: false` (see the README).
   */
  readonly client?: Redis | Cluster;
  /** A Redis URL (`redis://[[user]:pass@]host[:port][/db]`, `rediss://` for TLS). */
  readonly url?: string;
  /** Connect to a Redis Cluster through these seed nodes. */
  readonly cluster?: RedisClusterConfig;
  /** Connect to the master a set of Sentinels monitors. */
  readonly sentinel?: RedisSentinelConfig;
  /**
   * Further ioredis options for a client the backend builds from `url` or `sentinel` (for
   * example `password`, `username`, `db`, `tls`, `enableAutoPipelining`). The settings that
   * keep every call bounded take precedence.
   */
  readonly redisOptions?: RedisOptions;
  /**
   * Prepended to every key, lock, fence counter and the pub/sub channel this backend uses,
   * so several stores can share one Redis. Must not contain `{` or `}`.
   * @default ''
   */
  readonly keyPrefix?: string;
  /**
   * The largest value, in bytes, the backend accepts; larger ones reject with
   * `ValueTooLargeError` before any I/O. Set it to your server's `proto-max-bulk-len` if you
   * lowered that, or lower still to cap what a store may write.
   * @default 536870912 (512 MiB, Redis' default `proto-max-bulk-len`)
   */
  readonly maxValueBytes?: number;
  /**
   * Deadline of every Redis call, connecting included: past it the call rejects with
   * `BackendUnavailableError` (never connected, nothing sent) or `BackendTimeoutError`
   * (sent, no answer). Also the connect timeout of clients the backend builds.
   * @default 2000
   */
  readonly operationTimeoutMs?: number;
  /**
   * Replicated locks, for locks that survive a failover. With it, an acquire is granted, an
   * extend reported, and a locked write or delete acknowledged only once `WAIT` has seen
   * `replicas` replicas take it within `timeoutMs`; else the call fails: an acquire with
   * `BackendUnavailableError` (the lock taken on the primary is given back), an extend or a
   * locked write or delete with `BackendTimeoutError` (it happened on the primary and may or
   * may not survive a failover). Fencing tokens are then never below the server's clock in
   * microseconds, so they keep rising across a failover that lost the last increments.
   * Unlocked writes and releases are not waited for. See the README's Locks section.
   * @default undefined (locks are as safe as the primary: asynchronous replication)
   */
  readonly lockReplication?: RedisLockReplication;
}

/** The default of {@link RedisBackendOptions.operationTimeoutMs}. */
const DEFAULT_OPERATION_TIMEOUT_MS = 2_000;

/** Redis' default `proto-max-bulk-len`: the largest string value it accepts. */
export const DEFAULT_MAX_VALUE_BYTES = 512 * 1024 * 1024;

/** The checked {@link RedisLockReplication}, defaults applied. */
export interface ResolvedLockReplication {
  readonly replicas: number;
  readonly timeoutMs: number;
}

/** The checked numbers of {@link RedisBackendOptions}, defaults applied. */
export interface ResolvedRedisBackendOptions {
  readonly timeoutMs: number;
  readonly maxValueBytes: number;
  /** Absent: locks are not waited for. */
  readonly lockReplication: ResolvedLockReplication | undefined;
}

/**
 * Checks the options that are plain numbers and applies their defaults (the connection
 * options are checked where the client is built).
 * @throws {ValidationError} for a non-object or a bad number.
 */
export function resolveRedisBackendOptions(options: RedisBackendOptions): ResolvedRedisBackendOptions {
  if (typeof options !== 'object' || options === null) throw new ValidationError('RedisBackend options must be an object.');
  const timeoutMs = options.operationTimeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new ValidationError(`RedisBackend: operationTimeoutMs must be a positive finite number, got ${String(timeoutMs)}.`);
  }
  const maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
  if (!Number.isSafeInteger(maxValueBytes) || maxValueBytes < 1) {
    throw new ValidationError(`RedisBackend: maxValueBytes must be a positive integer, got ${String(maxValueBytes)}.`);
  }
  return { timeoutMs, maxValueBytes, lockReplication: resolveLockReplication(options.lockReplication, timeoutMs) };
}

function resolveLockReplication(
  replication: RedisLockReplication | undefined,
  operationTimeoutMs: number,
): ResolvedLockReplication | undefined {
  if (replication === undefined) return undefined;
  if (typeof replication !== 'object' || replication === null) {
    throw new ValidationError('RedisBackend: lockReplication must be an object like { replicas: 2 }.');
  }
  const { replicas } = replication;
  if (!Number.isSafeInteger(replicas) || replicas < 1) {
    throw new ValidationError(`RedisBackend: lockReplication.replicas must be a whole number of at least 1, got ${String(replicas)}.`);
  }
  // WAIT takes whole milliseconds, and 0 would mean "wait forever".
  const timeoutMs = replication.timeoutMs ?? Math.max(1, Math.floor(operationTimeoutMs / 2));
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1 || timeoutMs >= operationTimeoutMs) {
    throw new ValidationError(
      `RedisBackend: lockReplication.timeoutMs must be a whole number of ms from 1 to below operationTimeoutMs (${operationTimeoutMs}), got ${String(timeoutMs)}.`,
    );
  }
  return { replicas, timeoutMs };
}
