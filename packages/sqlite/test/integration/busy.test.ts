import { join } from 'node:path';
import { BackendClosedError, BackendTimeoutError } from '@latchkey/core';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteBackend } from '../../src/index.js';
import { bytes, tempDir, text, uniqueTable } from '../support/files.js';
import { rawConnection } from '../support/raw.js';

const dir = tempDir('busy');
const filename = join(dir, 'busy.db');
const operationTimeoutMs = 600;
const busyTimeoutMs = 50;
const open: SqliteBackend[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((backend) => backend.close()));
});

/** A backend on the shared file, its table created, with a short deadline. */
async function backend(table = uniqueTable()): Promise<SqliteBackend> {
  const made = new SqliteBackend({ filename, table, operationTimeoutMs, busyTimeoutMs });
  open.push(made);
  await made.set('seed', bytes('seed'));
  return made;
}

/** Holds the file's write lock from another connection until the returned function is called. */
function holdWriteLock(): () => void {
  const raw = rawConnection(filename);
  raw.exec('BEGIN IMMEDIATE');
  return () => {
    raw.exec('COMMIT');
    raw.close();
  };
}

/** The longest gap between ticks of a 5 ms interval while `work` runs: how long the event loop was blocked. */
async function longestStall<T>(work: () => Promise<T>): Promise<{ result: PromiseSettledResult<T>; stallMs: number }> {
  let last = performance.now();
  let stallMs = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    stallMs = Math.max(stallMs, now - last);
    last = now;
  }, 5);
  const [result] = await Promise.allSettled([work()]);
  clearInterval(ticker);
  return { result, stallMs: Math.max(stallMs, performance.now() - last) };
}

describe('another connection holding the write lock', () => {
  it('rejects a write with BackendTimeoutError (SQLITE_BUSY as cause) within the deadline, yielding the event loop between tries', async () => {
    const store = await backend();
    const release = holdWriteLock();
    try {
      const startedAt = performance.now();
      const { result, stallMs } = await longestStall(() => store.set('k', bytes('v')));
      const elapsedMs = performance.now() - startedAt;
      const timings = `settled after ${elapsedMs.toFixed(0)} ms (deadline ${operationTimeoutMs}), longest event-loop stall ${stallMs.toFixed(0)} ms`;
      expect(result.status, timings).toBe('rejected');
      const error = (result as PromiseRejectedResult).reason as BackendTimeoutError & { cause?: { code?: string } };
      expect(error, timings).toBeInstanceOf(BackendTimeoutError);
      expect(error.cause?.code).toBe('SQLITE_BUSY');
      // Tries stop once another would not fit: the last one starts before deadline − busyTimeoutMs.
      expect(elapsedMs, timings).toBeGreaterThan(operationTimeoutMs - busyTimeoutMs - 2 * 20 - 50);
      expect(elapsedMs, timings).toBeLessThan(operationTimeoutMs + 100);
      // One try blocks for busyTimeoutMs at most; a loop blocked for the whole call would stall ~600 ms.
      expect(stallMs, timings).toBeLessThan(busyTimeoutMs + 150);
    } finally {
      release();
    }
    expect(await store.get('k'), 'a write that timed out wrote nothing').toBeUndefined();
  });

  it('still answers reads at once (WAL: readers never wait for the writer)', async () => {
    const store = await backend();
    const release = holdWriteLock();
    try {
      const startedAt = performance.now();
      expect(text(await store.get('seed'))).toBe('seed');
      expect((await store.getMany(['seed', 'none'])).map(text)).toStrictEqual(['seed', undefined]);
      const elapsedMs = performance.now() - startedAt;
      expect(elapsedMs, `reads took ${elapsedMs.toFixed(0)} ms`).toBeLessThan(busyTimeoutMs);
    } finally {
      release();
    }
  });

  it('completes a write once the other connection commits within the deadline', async () => {
    const store = await backend();
    const release = holdWriteLock();
    setTimeout(release, 150);
    const startedAt = performance.now();
    expect(await store.set('k', bytes('after the commit'))).toBe('written');
    const elapsedMs = performance.now() - startedAt;
    expect(elapsedMs, `written after ${elapsedMs.toFixed(0)} ms`).toBeGreaterThanOrEqual(140);
    expect(text(await store.get('k'))).toBe('after the commit');
  });

  it('settles a write still retrying on the locked file with BackendClosedError when the backend closes, before its deadline', async () => {
    const store = await backend();
    const release = holdWriteLock();
    try {
      const startedAt = performance.now();
      const write = store.set('k', bytes('v')).then(
        () => undefined,
        (reason: unknown) => reason,
      );
      // The first try found the file locked (busyTimeoutMs of waiting): the call is now between tries.
      await new Promise((resolve) => setTimeout(resolve, busyTimeoutMs));
      await store.close();
      const error = await write;
      const elapsedMs = performance.now() - startedAt;
      expect(error).toBeInstanceOf(BackendClosedError);
      // Settled by close, not by the deadline (which is 600 ms away; one more try blocks busyTimeoutMs at most).
      expect(elapsedMs, `settled after ${elapsedMs.toFixed(0)} ms`).toBeLessThan(operationTimeoutMs - busyTimeoutMs);
    } finally {
      release();
    }
    const check = await backend(store.table);
    expect(await check.get('k'), 'the write that was ended wrote nothing').toBeUndefined();
  });

  it('rejects an acquire that cannot take the write lock with BackendTimeoutError and leaves the key free', async () => {
    const store = await backend();
    const release = holdWriteLock();
    try {
      const error = await store.acquireLock('k', { leaseMs: 1000, waitMs: 0 }).then(
        () => undefined,
        (reason: unknown) => reason,
      );
      expect(error).toBeInstanceOf(BackendTimeoutError);
    } finally {
      release();
    }
    const lease = await store.acquireLock('k', { leaseMs: 1000, waitMs: 0 });
    expect(lease, 'the timed-out acquire left a lease behind').toBeDefined();
  });

  it('opens an existing table without waiting for the writer, and creates a new one once the lock is free', async () => {
    const existing = await backend();
    const table = existing.table;
    const release = holdWriteLock();
    const reopened = new SqliteBackend({ filename, table, operationTimeoutMs, busyTimeoutMs });
    const fresh = new SqliteBackend({ filename, table: uniqueTable(), operationTimeoutMs, busyTimeoutMs });
    open.push(reopened, fresh);
    try {
      expect(text(await reopened.get('seed'))).toBe('seed');
      await expect(fresh.get('k')).rejects.toBeInstanceOf(BackendTimeoutError);
    } finally {
      release();
    }
    expect(await fresh.get('k')).toBeUndefined();
  });
});
