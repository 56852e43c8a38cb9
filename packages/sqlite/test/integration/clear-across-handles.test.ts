import { join } from 'node:path';
import type { Lease } from '@latchkey/core';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteBackend } from '../../src/index.js';
import { bytes, tempDir, text, uniqueTable } from '../support/files.js';

const dir = tempDir('clear-across-handles');
const open: SqliteBackend[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((backend) => backend.close()));
});

/** A backend with its own connection to `filename`: to SQLite's locking, another process. */
function handle(filename: string, table: string): SqliteBackend {
  const made = new SqliteBackend({ filename, table, purgeIntervalMs: 0 });
  open.push(made);
  return made;
}

describe('clear seen through another connection to the same file', () => {
  it('removes values for every handle while the lease another handle holds survives, and fencing keeps increasing', async () => {
    const [filename, table] = [join(dir, 'leased.db'), uniqueTable()];
    const [holder, other] = [handle(filename, table), handle(filename, table)];
    const lease = (await holder.acquireLock('locked', { leaseMs: 60_000, waitMs: 0 })) as Lease;
    expect(await holder.set('locked', bytes('before'), { lease })).toBe('written');
    await holder.setMany([
      ['a', bytes('1')],
      ['b', bytes('2')],
    ]);
    await other.clear();
    expect(await holder.getMany(['a', 'b', 'locked'])).toStrictEqual([undefined, undefined, undefined]);
    expect(await holder.has('a')).toBe(false);
    expect(await other.acquireLock('locked', { leaseMs: 60_000, waitMs: 0 }), 'an acquire by the clearing handle').toBeUndefined();
    expect(await holder.set('locked', bytes('after'), { lease })).toBe('written');
    expect(text(await other.get('locked'))).toBe('after');
    expect(await holder.releaseLock(lease)).toBe(true);
    const next = (await other.acquireLock('locked', { leaseMs: 60_000, waitMs: 0 })) as Lease;
    expect(next.fencingToken > lease.fencingToken, `fencing ${next.fencingToken} after ${lease.fencingToken}`).toBe(true);
    await other.releaseLock(next);
  });

  it('keeps fencing increasing after a clear and a purge removed the released key’s row', async () => {
    const [filename, table] = [join(dir, 'purged.db'), uniqueTable()];
    const [first, second] = [handle(filename, table), handle(filename, table)];
    const lease = (await first.acquireLock('k', { leaseMs: 60_000, waitMs: 0 })) as Lease;
    await first.set('k', bytes('v'), { lease });
    await first.releaseLock(lease);
    await second.clear();
    // The released key's row is a tombstone now; the purge removes it and raises the fence floor.
    expect(await second.purgeExpired()).toBeGreaterThanOrEqual(1);
    expect(await first.keys()[Symbol.asyncIterator]().next()).toStrictEqual({ done: true, value: undefined });
    const next = (await second.acquireLock('k', { leaseMs: 60_000, waitMs: 0 })) as Lease;
    expect(next.fencingToken > lease.fencingToken, `fencing ${next.fencingToken} after ${lease.fencingToken}`).toBe(true);
    await second.releaseLock(next);
  });
});
