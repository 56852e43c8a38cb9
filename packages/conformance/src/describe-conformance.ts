import type { Backend } from '@latchkey/core';
import { describe, it } from 'vitest';
import type { ConformanceGroup, ConformanceOptions } from './conformance-options.js';
import { probeEnvironment, type ConformanceEnvironment } from './internal/environment.js';
import { registerBadInputChecks } from './internal/groups/bad-input-checks.js';
import { registerDataChecks } from './internal/groups/data-checks.js';
import { registerDirectBadInputChecks } from './internal/groups/direct-bad-input-checks.js';
import { registerEvictionChecks } from './internal/groups/eviction-checks.js';
import { registerFaultChecks } from './internal/groups/fault-checks.js';
import { registerLockChecks } from './internal/groups/lock-checks.js';
import { registerDataAdditionsChecks, registerStoreAdditionsChecks } from './internal/groups/store-additions-checks.js';
import { registerStoreChainChecks } from './internal/groups/store-chain-checks.js';
import { registerStoreChecks } from './internal/groups/store-checks.js';
import { registerStoreLockChecks } from './internal/groups/store-lock-checks.js';
import { registerStoreWriteLockChecks } from './internal/groups/store-write-lock-checks.js';
import { registerTtlChecks } from './internal/groups/ttl-checks.js';
import { checksFor } from './internal/register.js';

const GROUPS: Readonly<Record<ConformanceGroup, { readonly title: string; readonly register: (env: ConformanceEnvironment) => void }>> = {
  data: {
    title: 'data: the backend’s data calls',
    register: (env) => {
      registerDataChecks(env);
      registerDirectBadInputChecks(env);
      registerEvictionChecks(env);
      registerDataAdditionsChecks(env);
    },
  },
  ttl: { title: 'ttl: expiry on the backend and through KeyValueStore', register: registerTtlChecks },
  locks: { title: 'locks: the backend’s own lease locks', register: registerLockChecks },
  store: {
    title: 'store: KeyValueStore over the backend',
    register: (env) => {
      const { section } = checksFor(env);
      section('configure, values, batches, delete, getOrCreate, withLock, close', () => registerStoreChecks(env));
      section('locked writes and locking: false', () => registerStoreWriteLockChecks(env));
      section('proxies and key manglers', () => registerStoreChainChecks(env));
      section('clear, keys, has, ttl, touch, find and partial getMany', () => registerStoreAdditionsChecks(env));
    },
  },
  'store-locks': { title: 'store-locks: KeyValueStoreLock over the backend', register: registerStoreLockChecks },
  'bad-input': { title: 'bad-input: rejected with typed errors before any I/O', register: registerBadInputChecks },
  faults: { title: 'faults: network faults between the backend and its server', register: registerFaultChecks },
};

function describeGroups<B extends Backend>(
  name: string,
  options: ConformanceOptions<B>,
  only: readonly ConformanceGroup[] | undefined,
): void {
  describe(name, async () => {
    let env: ConformanceEnvironment;
    try {
      env = await probeEnvironment({ ...(options as unknown as ConformanceOptions<Backend>), ...(only === undefined ? {} : { only }) });
    } catch (error) {
      // One failing check with the reason, instead of a collection error that would also hide
      // every other suite in the file.
      it('builds a backend with create() and reads its capabilities', () => {
        throw error;
      });
      return;
    }
    const { section } = checksFor(env);
    for (const group of env.groups) {
      const { title, register } = GROUPS[group];
      section(title, () => register(env));
    }
  });
}

/**
 * Registers the whole conformance suite for a backend as vitest suites: the backend checked
 * directly (data, expiry, its own locks) and through `KeyValueStore` (every behaviour of the
 * API contract, locks, bad input). Call it at the top level of a vitest test file.
 *
 * While collecting, it calls `create()` once to read the backend's declared capabilities and
 * adapts the checks to them (lease lengths from `minLeaseMs`, waits from `ttlResolutionMs`,
 * size checks from `maxValueBytes`/`maxKeyBytes`); a check that cannot apply is registered
 * as skipped with a name that says why, never dropped silently.
 *
 * @example
 * import { describeBackendConformance } from '@latchkey/conformance'
 * describeBackendConformance('MyBackend', {
 *   create: () => new MyBackend({ keyPrefix: `test-${crypto.randomUUID()}:` }),
 *   destroy: (backend) => dropPrefix(backend),
 * })
 *
 * When `options.create` is not a function, `only` names an unknown group, or `create()` fails
 * or returns no backend, the suite registers one failing check that says so.
 */
export function describeBackendConformance<B extends Backend>(name: string, options: ConformanceOptions<B>): void {
  describeGroups(name, options, options.only);
}

/** Registers the `data` group only: the backend's data calls, called directly. See {@link describeBackendConformance}. */
export function describeDataConformance<B extends Backend>(name: string, options: ConformanceOptions<B>): void {
  describeGroups(name, options, ['data']);
}

/** Registers the `ttl` group only: expiry, directly and through `KeyValueStore`. See {@link describeBackendConformance}. */
export function describeTtlConformance<B extends Backend>(name: string, options: ConformanceOptions<B>): void {
  describeGroups(name, options, ['ttl']);
}

/** Registers the `locks` group only: the backend's own lease locks, called directly. See {@link describeBackendConformance}. */
export function describeLockConformance<B extends Backend>(name: string, options: ConformanceOptions<B>): void {
  describeGroups(name, options, ['locks']);
}

/** Registers the `store` group only: `KeyValueStore` behaviour over the backend. See {@link describeBackendConformance}. */
export function describeStoreConformance<B extends Backend>(name: string, options: ConformanceOptions<B>): void {
  describeGroups(name, options, ['store']);
}

/** Registers the `store-locks` group only: `KeyValueStoreLock` over the backend. See {@link describeBackendConformance}. */
export function describeStoreLockConformance<B extends Backend>(name: string, options: ConformanceOptions<B>): void {
  describeGroups(name, options, ['store-locks']);
}

/** Registers the `bad-input` group only: typed errors before any I/O. See {@link describeBackendConformance}. */
export function describeBadInputConformance<B extends Backend>(name: string, options: ConformanceOptions<B>): void {
  describeGroups(name, options, ['bad-input']);
}

/**
 * Registers the `faults` group only: the suite puts its own TCP proxy in front of
 * `options.faults.server` and pauses, black-holes, resets and refuses it under every call of
 * a backend built by `options.faults.createThrough`. See {@link describeBackendConformance}.
 *
 * @example
 * describeFaultConformance('MyBackend', {
 *   create: () => new MyBackend({ url, keyPrefix: unique() }),
 *   faults: {
 *     server: { host: '127.0.0.1', port },
 *     createThrough: ({ host, port }) => new MyBackend({ url: `my://${host}:${port}`, keyPrefix: unique(), timeoutMs: 1000 }),
 *   },
 * })
 */
export function describeFaultConformance<B extends Backend>(name: string, options: ConformanceOptions<B>): void {
  describeGroups(name, options, ['faults']);
}
