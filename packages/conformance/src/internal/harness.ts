import { randomUUID } from 'node:crypto';
import { hasOwnLocks, KeyValueStore, sha1KeyMangler, type Backend, type ConfigureOptions, type LockingBackend } from '@latchkey/core';
import type { ConformanceEnvironment } from './environment.js';
import { trackBackendCalls } from './track-backend-calls.js';

/** A store the harness configured, with the backend under it. */
export interface ConfiguredStore {
  readonly store: KeyValueStore;
  readonly backend: Backend;
}

let storeCounter = 0;

/** `KeyValueStore`'s default `operationTimeoutMs`. */
const DEFAULT_BACKSTOP_MS = 15_000;
/** How far above the backend's own deadline the store's backstop is set. */
const BACKSTOP_SLACK_MS = 5000;

/**
 * Per-check resources: backends from `create`, peers, and configured stores. `dispose`
 * destroys and closes everything the check made, so checks stay independent.
 */
export class Harness {
  /** Unique per check, so keys never collide even on a backend that is not fully isolated. */
  readonly id = randomUUID().slice(0, 8);
  readonly #env: ConformanceEnvironment;
  readonly #backends: Backend[] = [];
  readonly #peers: Backend[] = [];
  readonly #stores: KeyValueStore[] = [];

  constructor(env: ConformanceEnvironment) {
    this.#env = env;
  }

  /** A user key unique to this check. */
  key(name = 'key'): string {
    return `${name}:${this.id}`;
  }

  /** A unique store name. */
  storeName(label = 'store'): string {
    storeCounter += 1;
    return `latchkey-conformance-${label}-${this.id}-${storeCounter}`;
  }

  /** A fresh backend from `create`. */
  async backend(): Promise<Backend> {
    // Tracked, so event-loop lag the backend's own calls cause never passes for outside lag.
    const backend = trackBackendCalls(await this.#env.create());
    this.#backends.push(backend);
    return backend;
  }

  /** A fresh backend that has its own locks. @throws {Error} when it has not. */
  async lockingBackend(): Promise<LockingBackend> {
    const backend = await this.backend();
    if (!hasOwnLocks(backend)) throw new Error('create() returned a backend without its own locks, unlike the probe backend');
    return backend;
  }

  /** A second handle on `backend`'s data and locks (`createPeer`, or `backend` itself). */
  async peer(backend: Backend): Promise<Backend> {
    const peer = trackBackendCalls(await this.#env.createPeer(backend));
    if (peer !== backend) this.#peers.push(peer);
    return peer;
  }

  /**
   * A store configured over `backend` (default: a fresh one), with a small lock safety window
   * so lock checks can use short leases, and its backstop deadline above the backend's declared
   * `callDeadlineMs` (the store's default, 15 s, would otherwise cut off calls the backend
   * allows more time, such as a 16 MiB write to a slow server).
   */
  async store(options: ConfigureOptions = {}, backend?: Backend): Promise<ConfiguredStore> {
    const target = backend ?? (await this.backend());
    const store = this.track(new KeyValueStore(this.storeName()));
    const backstopMs = Math.max(DEFAULT_BACKSTOP_MS, (this.#env.capabilities.callDeadlineMs ?? 0) + BACKSTOP_SLACK_MS);
    await store.configure(target, { lockSafetyWindowMs: this.#env.timings.safetyMs, operationTimeoutMs: backstopMs, ...options });
    return { store, backend: target };
  }

  /** Makes the harness close `store` at the end of the check. */
  track(store: KeyValueStore): KeyValueStore {
    this.#stores.push(store);
    return store;
  }

  /** The key a store with the default mangler stores `key` under on this backend. */
  storedKey(key: string): string {
    return (this.#env.keyMangler ?? sha1KeyMangler)(key);
  }

  /** Destroys, then closes, everything this check made; every step runs even if one fails. */
  async dispose(): Promise<void> {
    const failures: unknown[] = [];
    const attempt = async (work: () => Promise<unknown>): Promise<void> => {
      try {
        await work();
      } catch (error) {
        failures.push(error);
      }
    };
    for (const backend of this.#backends) await attempt(() => this.#env.destroy(backend));
    for (const store of this.#stores) await attempt(() => store.close());
    for (const peer of this.#peers) await attempt(() => peer.close());
    for (const backend of this.#backends) await attempt(() => backend.close());
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new AggregateError(failures, 'cleaning up after the check failed');
  }
}
