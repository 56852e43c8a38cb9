import { describe, expect, it } from 'vitest';
import { KeyValueStore, LockNotActiveError, LockTimeoutError } from '../../src/index.js';
import { MapBackend, uniqueName } from '../support/map-backend.js';

async function configured(options: Parameters<KeyValueStore['configure']>[1] = {}): Promise<KeyValueStore> {
  const store = new KeyValueStore(uniqueName());
  await store.configure(new MapBackend(), options);
  return store;
}

// The signal is made when first read: these check that reading it late tells the same story.
describe('KeyValueStoreLock.signal', () => {
  it('is aborted with LockNotActiveError when first read after the release', async () => {
    const store = await configured();
    const lock = await store.getLock('k').acquire();
    await lock.release();
    expect(lock.signal.aborted).toBe(true);
    expect(lock.signal.reason).toBeInstanceOf(LockNotActiveError);
    await store.close();
  });

  it('fires abort with LockNotActiveError at the release when read while held', async () => {
    const store = await configured();
    const lock = await store.getLock('k').acquire();
    const { signal } = lock;
    const reasons: unknown[] = [];
    signal.addEventListener('abort', () => reasons.push(signal.reason));
    expect(signal.aborted).toBe(false);
    await lock.release();
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toBeInstanceOf(LockNotActiveError);
    expect(lock.signal).toBe(signal);
    await store.close();
  });

  it('keeps the first reason: a lease lost before the release reads as LockTimeoutError', async () => {
    const store = await configured({ lockTimeoutMs: 2000, lockSafetyWindowMs: 1990 });
    const lock = await store.getLock('k').acquire();
    // The expiry timer marks the lock lost once the trusted part of the lease is over.
    await new Promise((resolve) => setTimeout(resolve, 60));
    await lock.release();
    expect(lock.signal.aborted).toBe(true);
    expect(lock.signal.reason).toBeInstanceOf(LockTimeoutError);
    await store.close();
  });

  it('is a fresh, unaborted signal for the next holding after a release nobody read', async () => {
    const store = await configured();
    const lock = store.getLock('k');
    await lock.acquire();
    await lock.release();
    await lock.acquire();
    expect(lock.signal.aborted).toBe(false);
    await lock.release();
    expect(lock.signal.aborted).toBe(true);
    expect(lock.signal.reason).toBeInstanceOf(LockNotActiveError);
    await store.close();
  });

  it('read before the acquire is the signal of that holding', async () => {
    const store = await configured();
    const lock = store.getLock('k');
    const early = lock.signal;
    await lock.acquire();
    expect(lock.signal).toBe(early);
    expect(early.aborted).toBe(false);
    await lock.release();
    expect(early.aborted).toBe(true);
    await store.close();
  });
});
