import { join } from 'node:path';
import { BackendClosedError, ValidationError, type Lease } from '@latchkey/core';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteBackend } from '../../src/index.js';
import { bytes, sleep, tempDir, text, uniqueTable } from '../support/files.js';
import { rawRows } from '../support/raw.js';

const filename = join(tempDir('locks'), 'locks.db');
const open: SqliteBackend[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((backend) => backend.close()));
});

/** Two backends (connections) on one table of the shared file. */
function pair(): [SqliteBackend, SqliteBackend] {
  const table = uniqueTable();
  const made: [SqliteBackend, SqliteBackend] = [new SqliteBackend({ filename, table }), new SqliteBackend({ filename, table })];
  open.push(...made);
  return made;
}

async function mustAcquire(backend: SqliteBackend, key: string, leaseMs = 10_000): Promise<Lease> {
  const lease = await backend.acquireLock(key, { leaseMs, waitMs: 0 });
  if (lease === undefined) throw new Error(`${key} is held`);
  return lease;
}

describe('leases in the row', () => {
  it('stores the token, the lapse in epoch ms of the wall clock and the fence in the key’s row', async () => {
    const [backend] = pair();
    const before = Date.now();
    const lease = await mustAcquire(backend, 'k', 5000);
    const after = Date.now();
    const row = rawRows(filename, backend.table).get('k');
    expect(row?.lock_token).toBe(lease.token);
    expect(row?.fence).toBe(Number(lease.fencingToken));
    expect(row?.lock_expires_at).toBeGreaterThanOrEqual(before + 5000);
    expect(row?.lock_expires_at).toBeLessThanOrEqual(after + 5000);
    expect(row?.value, 'a lock is not a value').toBeNull();
  });

  it('stores no lapse for leaseMs 0, and clears the token on release', async () => {
    const [backend] = pair();
    const lease = await mustAcquire(backend, 'k', 0);
    expect(rawRows(filename, backend.table).get('k')?.lock_expires_at).toBeNull();
    expect(await backend.releaseLock(lease)).toBe(true);
    expect(rawRows(filename, backend.table).get('k')).toMatchObject({ lock_token: null, lock_expires_at: null });
  });
});

describe('fencing', () => {
  it('keeps tokens increasing across connections, deletes of the value and the purge of the key’s row', async () => {
    const [first, second] = pair();
    const tokens: bigint[] = [];
    for (const backend of [first, second, first]) {
      const lease = await mustAcquire(backend, 'k');
      await backend.set('k', bytes('v'), { lease });
      tokens.push(lease.fencingToken);
      expect(await backend.releaseLock(lease)).toBe(true);
    }
    expect(await second.delete('k')).toBe('deleted');
    expect(rawRows(filename, first.table).get('k'), 'the delete keeps the fence').toMatchObject({ value: null, fence: 3 });
    expect(await first.purgeExpired()).toBe(1);
    expect(rawRows(filename, first.table).has('k'), 'the purge removed the empty row').toBe(false);
    // A write without a lock makes a new row with no fence of its own: the floor still counts.
    await second.set('k', bytes('unlocked'));
    tokens.push((await mustAcquire(second, 'k')).fencingToken);
    expect(tokens).toStrictEqual([1n, 2n, 3n, 4n]);
  });
});

describe('waiting across connections', () => {
  it('hands the key to a waiter on another connection within its longest poll pause (50 ms) after a release', async () => {
    const [holder, waiter] = pair();
    const lease = await mustAcquire(holder, 'k');
    const waiting = waiter.acquireLock('k', { leaseMs: 1000, waitMs: 5000 });
    await sleep(300);
    const releasedAt = performance.now();
    await holder.releaseLock(lease);
    const next = await waiting;
    const handoffMs = performance.now() - releasedAt;
    expect(next).toBeDefined();
    expect(handoffMs, `handed over ${handoffMs.toFixed(0)} ms after the release`).toBeLessThan(50 + 100);
  });
});

describe('close', () => {
  it('gives back the leases it holds (a 0 ms lease too), so another connection takes them at once', async () => {
    const [closing, other] = pair();
    await mustAcquire(closing, 'a', 60_000);
    await mustAcquire(closing, 'b', 0);
    await closing.close();
    expect(await other.acquireLock('a', { leaseMs: 1000, waitMs: 0 })).toBeDefined();
    expect(await other.acquireLock('b', { leaseMs: 1000, waitMs: 0 })).toBeDefined();
  });

  it('rejects a waiter it interrupts with BackendClosedError', async () => {
    const [holder, closing] = pair();
    await mustAcquire(holder, 'k');
    const waiting = closing.acquireLock('k', { leaseMs: 1000, waitMs: 60_000 });
    await sleep(30);
    await closing.close();
    await expect(waiting).rejects.toBeInstanceOf(BackendClosedError);
  });

  it('rejects every call made after it with BackendClosedError', async () => {
    const [closing, other] = pair();
    const lease = await mustAcquire(other, 'k');
    await closing.set('k', bytes('v'));
    void closing.close();
    const calls: [string, () => Promise<unknown>][] = [
      ['get', () => closing.get('k')],
      ['getMany', () => closing.getMany(['k'])],
      ['set', () => closing.set('k', bytes('v'))],
      ['setMany', () => closing.setMany([['k', bytes('v')]])],
      ['delete', () => closing.delete('k')],
      ['deleteMany', () => closing.deleteMany(['k'])],
      ['acquireLock', () => closing.acquireLock('other', { leaseMs: 1000, waitMs: 0 })],
      ['releaseLock', () => closing.releaseLock(lease)],
      ['extendLock', () => closing.extendLock(lease, 1000)],
      ['purgeExpired', () => closing.purgeExpired()],
    ];
    for (const [name, call] of calls) await expect(call(), name).rejects.toBeInstanceOf(BackendClosedError);
    expect(text(await other.get('k')), 'nothing was written after close').toBe('v');
  });
});

describe('malformed leases', () => {
  it('rejects them with ValidationError in releaseLock, extendLock, set and delete', async () => {
    const [backend] = pair();
    const malformed = [{}, { key: 'k', token: 't' }, { key: '', token: 't', fencingToken: 1n }, { key: 'k', token: 't', fencingToken: 1 }];
    for (const lease of malformed as unknown as Lease[]) {
      await expect(backend.releaseLock(lease)).rejects.toBeInstanceOf(ValidationError);
      await expect(backend.extendLock(lease, 1000)).rejects.toBeInstanceOf(ValidationError);
      await expect(backend.set('k', bytes('v'), { lease })).rejects.toBeInstanceOf(ValidationError);
      await expect(backend.delete('k', { lease })).rejects.toBeInstanceOf(ValidationError);
    }
    expect(await backend.get('k')).toBeUndefined();
  });

  it("answers 'lease-lost' to a well-formed lease for another key, writing nothing", async () => {
    const [backend] = pair();
    const lease = await mustAcquire(backend, 'a');
    await backend.set('b', bytes('kept'));
    expect(await backend.set('b', bytes('changed'), { lease })).toBe('lease-lost');
    expect(await backend.delete('b', { lease })).toBe('lease-lost');
    expect(text(await backend.get('b'))).toBe('kept');
  });
});

describe('long waits', () => {
  it("keeps a 30-day wait on a held key waiting after 1 s (timers beyond setTimeout's range do not fire early)", async () => {
    const [holder, waiter] = pair();
    await mustAcquire(holder, 'k');
    const controller = new AbortController();
    let settled = false;
    const waiting = waiter.acquireLock('k', { leaseMs: 1000, waitMs: 30 * 24 * 3600 * 1000, signal: controller.signal });
    void waiting.then(
      () => (settled = true),
      () => (settled = true),
    );
    await sleep(1000);
    expect(settled, 'the 30-day wait settled within 1 s').toBe(false);
    controller.abort(new Error('done waiting'));
    await expect(waiting).rejects.toThrow('done waiting');
  });
});
