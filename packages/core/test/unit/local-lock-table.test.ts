import { afterEach, describe, expect, it } from 'vitest';
import { BackendClosedError, LocalLockTable, type Lease } from '../../src/index.js';
import { sleep } from '../support/map-backend.js';

describe('LocalLockTable', () => {
  let table = new LocalLockTable();
  afterEach(() => {
    table.close();
    table = new LocalLockTable();
  });

  it('grants a free key at once and refuses a held one without waiting', async () => {
    const first = await table.acquire('k', { leaseMs: 1000, waitMs: 0 });
    expect(first).toBeDefined();
    expect(await table.acquire('k', { leaseMs: 1000, waitMs: 0 })).toBeUndefined();
  });

  it('serves waiters in arrival order', async () => {
    const held = (await table.acquire('k', { leaseMs: 0, waitMs: 0 })) as Lease;
    const order: number[] = [];
    const waiters = [1, 2, 3].map((n) =>
      table.acquire('k', { leaseMs: 0, waitMs: 5000 }).then((lease) => {
        order.push(n);
        if (lease) table.release(lease);
      }),
    );
    table.release(held);
    await Promise.all(waiters);
    expect(order).toStrictEqual([1, 2, 3]);
  });

  it('gives strictly increasing fencing tokens', async () => {
    const tokens: bigint[] = [];
    for (let i = 0; i < 5; i++) {
      const lease = (await table.acquire(i % 2 ? 'a' : 'b', { leaseMs: 0, waitMs: 0 })) as Lease;
      tokens.push(lease.fencingToken);
      table.release(lease);
    }
    expect([...tokens].sort((x, y) => (x < y ? -1 : 1))).toStrictEqual(tokens);
    expect(new Set(tokens).size).toBe(5);
  });

  it('lets the next waiter in when the lease lapses', async () => {
    const first = (await table.acquire('k', { leaseMs: 50, waitMs: 0 })) as Lease;
    const started = performance.now();
    const second = await table.acquire('k', { leaseMs: 50, waitMs: 2000 });
    expect(second).toBeDefined();
    expect(performance.now() - started).toBeGreaterThanOrEqual(40);
    expect(table.holds(first)).toBe(false);
  });

  it('never releases or extends a lease that another holder now owns', async () => {
    const first = (await table.acquire('k', { leaseMs: 30, waitMs: 0 })) as Lease;
    await sleep(40);
    const second = (await table.acquire('k', { leaseMs: 5000, waitMs: 0 })) as Lease;
    expect(table.release(first)).toBe(false);
    expect(table.extend(first, 5000)).toBe(false);
    expect(table.holds(second)).toBe(true);
  });

  it('rejects an aborted wait with the reason and leaves nothing behind', async () => {
    const held = (await table.acquire('k', { leaseMs: 0, waitMs: 0 })) as Lease;
    const controller = new AbortController();
    const waiting = table.acquire('k', { leaseMs: 0, waitMs: 5000, signal: controller.signal });
    const reason = new Error('stop');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    table.release(held);
    expect(table.size).toBe(0);
  });

  it('resolves undefined when the wait runs out', async () => {
    await table.acquire('k', { leaseMs: 0, waitMs: 0 });
    expect(await table.acquire('k', { leaseMs: 0, waitMs: 20 })).toBeUndefined();
  });

  it('drops held leases on dropAllLeases and hands the key to the next waiter', async () => {
    const held = (await table.acquire('k', { leaseMs: 0, waitMs: 0 })) as Lease;
    const waiting = table.acquire('k', { leaseMs: 0, waitMs: 5000 });
    table.dropAllLeases();
    const next = (await waiting) as Lease;
    expect(table.holds(held)).toBe(false);
    expect(table.holds(next)).toBe(true);
    expect(next.fencingToken > held.fencingToken).toBe(true);
  });

  it('rejects waiters with BackendClosedError when closed', async () => {
    await table.acquire('k', { leaseMs: 0, waitMs: 0 });
    const waiting = table.acquire('k', { leaseMs: 0, waitMs: 5000 });
    table.close();
    const error = await waiting.then(
      () => expect.fail('the wait should have been rejected'),
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(BackendClosedError);
    expect((error as BackendClosedError).code).toBe('BACKEND_CLOSED');
    expect((error as Error).message).toMatch(/closed while waiting/);
  });

  it('rejects acquire after close with BackendClosedError', async () => {
    table.close();
    await expect(table.acquire('k', { leaseMs: 0, waitMs: 0 })).rejects.toBeInstanceOf(BackendClosedError);
    await expect(table.acquire('k', { leaseMs: 0, waitMs: 5000 })).rejects.toBeInstanceOf(BackendClosedError);
    expect(table.size).toBe(0);
  });
});

describe('LocalLockTable with very long waits', () => {
  it('does not time out a wait longer than the largest timer delay early', async () => {
    const table = new LocalLockTable();
    await table.acquire('k', { leaseMs: 0, waitMs: 0 });
    let settled = false;
    const waiting = table.acquire('k', { leaseMs: 0, waitMs: 3e9 }).then(
      () => (settled = true),
      () => (settled = true),
    );
    await sleep(30);
    expect(settled).toBe(false);
    table.close();
    await waiting;
  });
});
