import { ValidationError } from '@latchkey/core';
import { Client, Server } from 'memjs';
import { isValidPrefix, MAX_PREFIX_BYTES } from './internal/keys.js';

/**
 * A memjs 1.3 `Client` (what `memjs.Client.create()` returns). The backend drives its servers
 * through memjs's raw request path and never closes a client it was given.
 */
export interface MemjsClient {
  readonly servers: readonly { readonly host: string; readonly port: number }[];
  readonly seq: number;
  incrSeq(): void;
  close(): void;
}

/** Options of {@link MemcachedBackend}. */
export interface MemcachedBackendOptions {
  /**
   * The servers: `host:port` entries (port default 11211), each optionally with SASL
   * credentials as `user:password@host:port`, as one comma-separated string or an array.
   * Keys are spread over them by consistent hashing. Required unless `client` is given.
   */
  readonly servers?: string | readonly string[];
  /**
   * A memjs client to use instead of building one (its servers are the server list). It is
   * not closed by {@link MemcachedBackend.close}. Give either `servers` or `client`.
   */
  readonly client?: MemjsClient;
  /**
   * Prepended to every stored key, so several stores or applications can share servers.
   * Printable ASCII without spaces, at most 128 bytes. No prefix should be a prefix of
   * another (end them with a separator such as `:`).
   * @default ''
   */
  readonly keyPrefix?: string;
  /**
   * Deadline of every call: it settles within this time, with `BackendTimeoutError` if the
   * server did not answer. Also memjs's connect and response timeouts for a built client.
   * @default 2000
   */
  readonly operationTimeoutMs?: number;
  /**
   * The servers' item size limit in bytes (memcached's `-I`). An item holds the value plus
   * memcached's per-item header and the key, so the largest value accepted is this minus
   * 512 bytes (`capabilities.maxValueBytes`); larger values fail with `ValueTooLargeError`
   * before any I/O.
   * @default 1048576 (1 MiB, memcached's default)
   */
  readonly maxValueBytes?: number;
  /**
   * Expiry of writes that carry none (Keystone's `memcached_expire_time`), in ms. Values
   * written with an expiry (the store's `ttlMs`) keep theirs. Absent: such writes never expire.
   */
  readonly defaultTtlMs?: number;
  /**
   * Keys that `defaultTtlMs` never applies to (Keystone's `no_expiry_keys`). Matched after
   * mangling: a listed key matches both as given (stores configured with `keyMangler: null`)
   * and as mangled by this backend's `keyMangler` (the store's default). For a store with a
   * custom mangler, list the mangled keys.
   */
  readonly noExpiryKeys?: readonly string[];
}

/** One parsed `servers` entry. */
export interface ServerAddress {
  readonly host: string;
  readonly port: number;
  readonly username?: string;
  readonly password?: string;
}

/** Options after validation, with defaults applied. */
export interface ResolvedOptions {
  readonly servers: readonly ServerAddress[] | undefined;
  readonly client: MemjsClient | undefined;
  readonly keyPrefix: string;
  readonly operationTimeoutMs: number;
  readonly itemSizeLimit: number;
  readonly defaultTtlMs: number | undefined;
  readonly noExpiryKeys: readonly string[];
}

/** Default deadline of each call. */
export const DEFAULT_OPERATION_TIMEOUT_MS = 2000;
/** memcached's default item size limit. */
export const DEFAULT_ITEM_SIZE_LIMIT = 1024 * 1024;
/**
 * Room for memcached's per-item overhead: measured on memcached 1.6 as 59 bytes plus the key
 * (with CAS enabled), so at most 309 bytes for a 250-byte key; 512 leaves a margin.
 */
export const ITEM_OVERHEAD_BYTES = 512;
const DEFAULT_PORT = 11211;

const KNOWN = new Set(['servers', 'client', 'keyPrefix', 'operationTimeoutMs', 'maxValueBytes', 'defaultTtlMs', 'noExpiryKeys']);

/** @throws {ValidationError} for any invalid option. */
export function resolveOptions(options: MemcachedBackendOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ValidationError('MemcachedBackend options must be an object.');
  }
  for (const name of Object.keys(options)) {
    if (!KNOWN.has(name)) throw new ValidationError(`MemcachedBackend: unknown option "${name}".`);
  }
  const { servers, client } = options;
  if ((servers === undefined) === (client === undefined)) {
    throw new ValidationError('MemcachedBackend: give either servers or client (not both).');
  }
  if (client !== undefined) checkClient(client);
  const keyPrefix = options.keyPrefix ?? '';
  if (typeof keyPrefix !== 'string' || !isValidPrefix(keyPrefix)) {
    throw new ValidationError(`MemcachedBackend: keyPrefix must be printable ASCII without spaces, at most ${MAX_PREFIX_BYTES} bytes.`);
  }
  const operationTimeoutMs = positiveNumber('operationTimeoutMs', options.operationTimeoutMs) ?? DEFAULT_OPERATION_TIMEOUT_MS;
  const itemSizeLimit = positiveNumber('maxValueBytes', options.maxValueBytes) ?? DEFAULT_ITEM_SIZE_LIMIT;
  if (!Number.isInteger(itemSizeLimit) || itemSizeLimit <= ITEM_OVERHEAD_BYTES) {
    throw new ValidationError(
      `MemcachedBackend: maxValueBytes must be an integer above ${ITEM_OVERHEAD_BYTES}, got ${String(itemSizeLimit)}.`,
    );
  }
  const noExpiryKeys = options.noExpiryKeys ?? [];
  if (!Array.isArray(noExpiryKeys) || !noExpiryKeys.every((key) => typeof key === 'string' && key.length > 0)) {
    throw new ValidationError('MemcachedBackend: noExpiryKeys must be an array of non-empty strings.');
  }
  return {
    servers: servers === undefined ? undefined : parseServers(servers),
    client,
    keyPrefix,
    operationTimeoutMs,
    itemSizeLimit,
    defaultTtlMs: positiveNumber('defaultTtlMs', options.defaultTtlMs),
    noExpiryKeys,
  };
}

/** The memjs client of a backend given `servers`: memjs's timeouts are the call deadline. */
export function buildClient(options: ResolvedOptions): Client {
  const seconds = options.operationTimeoutMs / 1000;
  const serverOptions = { timeout: seconds, conntimeout: seconds, keepAlive: true, keepAliveDelay: 30 };
  const servers = (options.servers ?? []).map(
    ({ host, port, username, password }) => new Server(host, port, username, password, { ...serverOptions }),
  );
  // Requests go through ServerChannel, not Client#perform: memjs's retries and failover (which
  // would move a key, and its lock, to another server) never apply.
  return new Client(servers, { retries: 1, failover: false, logger: { log: () => undefined } });
}

function positiveNumber(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ValidationError(`MemcachedBackend: ${name} must be a positive finite number, got ${String(value)}.`);
  }
  return value;
}

function checkClient(client: unknown): void {
  const candidate = client as { servers?: unknown; incrSeq?: unknown } | null;
  const servers = candidate?.servers;
  const usable =
    typeof client === 'object' &&
    typeof candidate?.incrSeq === 'function' &&
    Array.isArray(servers) &&
    servers.length > 0 &&
    servers.every((server: unknown) => {
      const s = server as Record<string, unknown> | null;
      return typeof s?.['write'] === 'function' && typeof s['onResponse'] === 'function' && typeof s['onError'] === 'function';
    });
  if (!usable) throw new ValidationError('MemcachedBackend: client must be a memjs 1.3 Client with at least one server.');
}

/**
 * Parses `servers`: `[user:password@]host[:port]` entries, IPv6 hosts in brackets.
 * @throws {ValidationError} for an empty list, a bad entry or a repeated server.
 */
export function parseServers(servers: string | readonly string[]): ServerAddress[] {
  const entries = typeof servers === 'string' ? servers.split(',') : Array.isArray(servers) ? servers : undefined;
  if (entries === undefined || !entries.every((entry) => typeof entry === 'string')) {
    throw new ValidationError('MemcachedBackend: servers must be a string or an array of strings.');
  }
  const parsed = entries
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0)
    .map(parseServer);
  if (parsed.length === 0) throw new ValidationError('MemcachedBackend: servers lists no server.');
  const seen = new Set<string>();
  for (const { host, port } of parsed) {
    const name = `${host}:${port}`;
    if (seen.has(name)) throw new ValidationError(`MemcachedBackend: server ${name} is listed twice.`);
    seen.add(name);
  }
  return parsed;
}

function parseServer(entry: string): ServerAddress {
  const at = entry.lastIndexOf('@');
  const credentials = at >= 0 ? entry.slice(0, at) : undefined;
  const address = at >= 0 ? entry.slice(at + 1) : entry;
  const match = /^(?:\[([^\]]+)\]|([^:[\]\s]+))(?::(\d+))?$/.exec(address);
  const host = match?.[1] ?? match?.[2];
  const port = match?.[3] === undefined ? DEFAULT_PORT : Number(match[3]);
  if (host === undefined || !Number.isInteger(port) || port < 1 || port > 65_535) {
    const shown = credentials === undefined ? entry : `…@${address}`;
    throw new ValidationError(`MemcachedBackend: bad server "${shown}"; expected [user:password@]host[:port].`);
  }
  if (credentials === undefined) return { host, port };
  const colon = credentials.indexOf(':');
  if (colon <= 0) throw new ValidationError(`MemcachedBackend: bad credentials in server "${address}"; expected user:password@.`);
  return { host, port, username: credentials.slice(0, colon), password: credentials.slice(colon + 1) };
}
