import { BackendClosedError, InvalidKeyError, ValidationError, ValueTooLargeError, type Lease } from '@latchkey/core';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_KEY_BYTES, PostgresBackend } from '../../src/index.js';

// Nothing listens on port 1: a call that reached the network would fail, not hang.
const URL = 'postgres://nobody@127.0.0.1:1/none';
const opened: PostgresBackend[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((backend) => backend.close()));
});

function backend(options: ConstructorParameters<typeof PostgresBackend>[0] = {}): PostgresBackend {
  const created = new PostgresBackend({ url: URL, ...options });
  opened.push(created);
  return created;
}

const lease: Lease = { key: 'k', token: 't', fencingToken: 1n };

describe('PostgresBackend without a server', () => {
  it('declares distributed, fenced, atomic locks with 1 ms resolution and its limits', () => {
    expect(backend({ operationTimeoutMs: 750, maxValueBytes: 4096 }).capabilities).toEqual({
      lockScope: 'distributed',
      atomicLeaseWrites: true,
      fencingTokens: true,
      ttlResolutionMs: 1,
      minLeaseMs: 1,
      maxKeyBytes: MAX_KEY_BYTES,
      maxValueBytes: 4096,
      mayEvict: false,
      callDeadlineMs: 750,
    });
  });

  it('exposes its table and pool; a given pool is the one used', () => {
    const pool = new pg.Pool({ connectionString: URL });
    const created = new PostgresBackend({ pool, table: 'app.kv' });
    opened.push(created);
    expect(created.pool).toBe(pool);
    expect(created.table).toBe('app.kv');
  });

  it('rejects bad input before any I/O', async () => {
    const created = backend({ maxValueBytes: 8 });
    const calls: [() => Promise<unknown>, new (...args: never[]) => Error][] = [
      [() => created.get(''), InvalidKeyError],
      [() => created.get('a\u0000b'), InvalidKeyError],
      [() => created.get('\ud800'), InvalidKeyError],
      [() => created.get('k'.repeat(MAX_KEY_BYTES + 1)), InvalidKeyError],
      [() => created.getMany(['ok', '']), InvalidKeyError],
      [() => created.set('k', 'text' as unknown as Uint8Array), ValidationError],
      [() => created.set('k', new Uint8Array(9)), ValueTooLargeError],
      [() => created.set('k', Uint8Array.of(1), { expiresAt: Number.NaN }), ValidationError],
      [() => created.set('k', Uint8Array.of(1), { lease: {} as Lease }), ValidationError],
      [() => created.setMany([['k\u0000', Uint8Array.of(1)]]), InvalidKeyError],
      [() => created.setMany([['k', new Uint8Array(9)]]), ValueTooLargeError],
      [() => created.delete('k', { lease: { key: 'k', token: '', fencingToken: 1n } }), ValidationError],
      [() => created.deleteMany([42 as unknown as string]), InvalidKeyError],
      [() => created.acquireLock('k', { leaseMs: -1, waitMs: 0 }), ValidationError],
      [() => created.releaseLock({} as Lease), ValidationError],
      [() => created.extendLock(lease, Number.NaN), ValidationError],
      [() => created.purgeExpired(-1), ValidationError],
      [() => created.has('a\u0000b'), InvalidKeyError],
      [() => created.compareAndSet('', Uint8Array.of(1), Uint8Array.of(2)), InvalidKeyError],
      [() => created.compareAndSet('k', 'text' as unknown as Uint8Array, Uint8Array.of(2)), ValidationError],
      [() => created.compareAndSet('k', Uint8Array.of(1), new Uint8Array(9)), ValueTooLargeError],
      [() => created.compareAndSet('k', Uint8Array.of(1), Uint8Array.of(2), { expiresAt: Number.NaN }), ValidationError],
    ];
    for (const [call, type] of calls) await expect(call()).rejects.toBeInstanceOf(type);
    expect(created.pool.totalCount).toBe(0);
  });

  it("answers without I/O what needs none: empty batches, another key's lease", async () => {
    const created = backend();
    expect(await created.getMany([])).toEqual([]);
    await created.setMany([]);
    await created.deleteMany([]);
    expect(await created.set('other', Uint8Array.of(1), { lease })).toBe('lease-lost');
    expect(await created.delete('other', { lease })).toBe('lease-lost');
    expect(created.pool.totalCount).toBe(0);
  });

  it('rejects every call after close() with BackendClosedError', async () => {
    const created = backend();
    await created.close();
    const calls: (() => Promise<unknown>)[] = [
      () => created.get('k'),
      () => created.getMany(['k']),
      () => created.set('k', Uint8Array.of(1)),
      () => created.setMany([['k', Uint8Array.of(1)]]),
      () => created.delete('k'),
      () => created.deleteMany(['k']),
      () => created.acquireLock('k', { leaseMs: 1_000, waitMs: 0 }),
      () => created.releaseLock(lease),
      () => created.extendLock(lease, 1_000),
      () => created.purgeExpired(),
      () => created.clear(),
      () => created.has('k'),
      () => created.compareAndSet('k', Uint8Array.of(1), Uint8Array.of(2)),
      () => created.keys()[Symbol.asyncIterator]().next(),
    ];
    for (const call of calls) await expect(call()).rejects.toBeInstanceOf(BackendClosedError);
    await created.close();
  });

  it('refuses invalid options with ValidationError', () => {
    expect(() => new PostgresBackend({ url: URL, table: 'bad name' })).toThrow(ValidationError);
    expect(() => new PostgresBackend({ url: URL, operationTimeoutMs: -5 })).toThrow(ValidationError);
  });
});
