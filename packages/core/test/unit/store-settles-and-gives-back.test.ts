import { describe, expect, it, vi } from 'vitest';
import {
  BackendClosedError,
  BackendTimeoutError,
  GIVE_BACK_FAILED_WARNING,
  InvalidKeyError,
  KeyValueStore,
  LocalLockTable,
  ProxyBackend,
  type AcquireLockOptions,
  type Lease,
  type StoredValue,
} from '../../src/index.js';
import { MapBackend, uniqueName } from '../support/map-backend.js';

/** A proxy whose data and lock calls never settle: what a stalled network hop looks like. */
class StallingProxy extends ProxyBackend {
  override get(): Promise<StoredValue | undefined> {
    return new Promise(() => undefined);
  }
  override releaseLock(): Promise<boolean> {
    return new Promise(() => undefined);
  }
}

/**
 * A backend with locks of its own over a lock table standing in for a shared server: closing
 * it leaves the table (the "server") alone, as closing a client connection would.
 */
class SharedLocksBackend extends MapBackend {
  readonly released: string[] = [];
  constructor(readonly table: LocalLockTable) {
    super({ lockScope: 'distributed', atomicLeaseWrites: true, callDeadlineMs: 0 });
  }
  acquireLock(key: string, options: AcquireLockOptions): Promise<Lease | undefined> {
    return this.table.acquire(key, options);
  }
  releaseLock(lease: Lease): Promise<boolean> {
    if (this.isClosed) return Promise.reject(new BackendClosedError('SharedLocksBackend is closed.'));
    this.released.push(lease.key);
    const released = this.table.release(lease);
    // Stands for the backend being closed by someone else right after this release.
    if (this.closeAfterNextRelease) this.isClosed = true;
    return Promise.resolve(released);
  }
  isClosed = false;
  closeAfterNextRelease = false;
  override async close(): Promise<void> {
    this.isClosed = true;
    await super.close();
  }
  extendLock(lease: Lease, leaseMs: number): Promise<boolean> {
    return Promise.resolve(this.table.extend(lease, leaseMs));
  }
}

async function timed<T>(work: Promise<T>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now();
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  return { error, ms: performance.now() - started };
}

describe('every call settles, through any chain', () => {
  // The backend declares it settles at once; the proxy in front of it stalls. The store must
  // not trust the declaration of the chain's head.
  it('times out a data call stalled by a proxy over a backend that declares callDeadlineMs 0', async () => {
    const store = new KeyValueStore(uniqueName('stalled-data'));
    await store.configure(new MapBackend({ callDeadlineMs: 0 }), { proxies: [StallingProxy], operationTimeoutMs: 50 });
    const { error, ms } = await timed(store.get('k'));
    expect(error).toBeInstanceOf(BackendTimeoutError);
    // Margin: the deadline plus a loaded machine's timer lateness, far below "hung".
    expect(ms, `settled after ${ms.toFixed(0)} ms`).toBeLessThan(50 + 2000);
    await store.close();
  });

  it('times out a release stalled by a proxy', async () => {
    const store = new KeyValueStore(uniqueName('stalled-release'));
    await store.configure(new SharedLocksBackend(new LocalLockTable()), { proxies: [StallingProxy], operationTimeoutMs: 50 });
    const lock = await store.getLock('k').acquire();
    const { error } = await timed(lock.release());
    expect(error).toBeInstanceOf(BackendTimeoutError);
    expect(lock.active).toBe(false);
    await store.close();
  });
});

describe('close gives back the locks the store holds', () => {
  it('frees a held key for other processes at once, without waiting out its lease', async () => {
    const server = new LocalLockTable();
    const first = new KeyValueStore(uniqueName('close-first'));
    const second = new KeyValueStore(uniqueName('close-second'));
    const backend = new SharedLocksBackend(server);
    await first.configure(backend, { lockTimeoutMs: 60_000, keyMangler: null });
    await second.configure(new SharedLocksBackend(server), { lockTimeoutMs: 60_000 });
    const held = await first.getLock('k').acquire();
    const never = await first.getLock('forever', { lockTimeoutMs: 0 }).acquire();
    await first.close();
    expect(backend.released.sort()).toStrictEqual(['forever', 'k']);
    expect(held.active).toBe(false);
    expect(held.signal.aborted).toBe(true);
    expect(never.active).toBe(false);
    expect(await second.getLock('k').tryAcquire()).toBe(true);
    expect(await second.getLock('forever').tryAcquire()).toBe(true);
    await second.close();
    server.close();
  });

  it('does not give back a lock that was released before close', async () => {
    const backend = new SharedLocksBackend(new LocalLockTable());
    const store = new KeyValueStore(uniqueName('close-released'));
    await store.configure(backend, { keyMangler: null });
    const lock = await store.getLock('k').acquire();
    await lock.release();
    await store.close();
    expect(backend.released).toStrictEqual(['k']);
    backend.table.close();
  });

  it('refuses a lock won while the store closes, and does not report a give-back the closed backend refused', async () => {
    const warnings = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const backend = new SharedLocksBackend(new LocalLockTable());
      const store = new KeyValueStore(uniqueName('close-waiter'));
      await store.configure(backend, { lockTimeoutMs: 0 });
      await store.getLock('k').acquire();
      const waiting = store.getLock('k').acquire({ waitMs: 5000 });
      // The waiter wins the key from close's give-back, and the backend is closed before the
      // waiter can give it back: the backend let go of it itself, so there is nothing to report.
      backend.closeAfterNextRelease = true;
      await store.close();
      await expect(waiting).rejects.toBeInstanceOf(BackendClosedError);
      const giveBackWarnings = warnings.mock.calls.filter(
        ([, options]) => (options as { code?: string } | undefined)?.code === GIVE_BACK_FAILED_WARNING,
      );
      expect(giveBackWarnings).toStrictEqual([]);
      backend.table.close();
    } finally {
      warnings.mockRestore();
    }
  });
});

describe('key manglers', () => {
  it('turns a mangler that throws into InvalidKeyError with the cause', async () => {
    const boom = new RangeError('mangler exploded');
    const store = new KeyValueStore(uniqueName('mangler-throws'));
    await store.configure(new MapBackend(), {
      keyMangler: () => {
        throw boom;
      },
    });
    const error = await store.get('k').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidKeyError);
    expect((error as InvalidKeyError).cause).toBe(boom);
    await store.close();
  });
});
