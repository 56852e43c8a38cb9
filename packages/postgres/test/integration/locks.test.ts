import { BackendClosedError, BackendTimeoutError, ValidationError, type Lease } from '@latchkey/core';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { UNHEARD_RELEASE_POLL_MS } from '../../src/internal/locks.js';
import { PostgresBackend } from '../../src/index.js';
import { admin, closeAll, createBackend, postgresAvailable, postgresUrl, rowsOf, sleep, track, uniqueTable } from '../support/postgres.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/** Two backends on one table, as two processes would be. */
function pair(options: ConstructorParameters<typeof PostgresBackend>[0] = {}): [PostgresBackend, PostgresBackend] {
  const table = uniqueTable();
  return [createBackend({ ...options, table }), createBackend({ ...options, table })];
}

const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
const format = (values: readonly number[]): string => values.map((ms) => ms.toFixed(1)).join(', ');

/**
 * Hands one key back and forth between `a` and `b` `rounds` times: each time the waiter is
 * already waiting (its first attempt failed) when the holder releases. Resolves the time from
 * each release call to the waiter's lease, in ms.
 */
async function handOvers(a: PostgresBackend, b: PostgresBackend, rounds: number): Promise<number[]> {
  const timings: number[] = [];
  let holder = a;
  let waiter = b;
  let lease = (await holder.acquireLock('baton', { leaseMs: 30_000, waitMs: 0 })) as Lease;
  for (let round = 0; round < rounds; round++) {
    const waiting = waiter.acquireLock('baton', { leaseMs: 30_000, waitMs: 10_000 });
    await sleep(30);
    const started = performance.now();
    expect(await holder.releaseLock(lease)).toBe(true);
    const next = await waiting;
    timings.push(performance.now() - started);
    expect(next).toBeDefined();
    lease = next as Lease;
    [holder, waiter] = [waiter, holder];
  }
  await holder.releaseLock(lease);
  return timings;
}

/** Waits until the listening connections of `backends` (all named `name`) are up: a first acquire on each opens them. */
async function listening(name: string, ...backends: PostgresBackend[]): Promise<void> {
  for (const backend of backends) await backend.acquireLock(`warm-up-${uniqueTable()}`, { leaseMs: 1_000, waitMs: 0 });
  const until = performance.now() + 5_000;
  while (performance.now() < until && (await listeners(name)) < backends.length) await sleep(10);
  expect(await listeners(name)).toBe(backends.length);
}

/** The server sessions of application `name` that listen (seen through pg_stat_activity). */
async function listeners(name: string): Promise<number> {
  const { rows } = await admin().query(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN "latchkey_%'`,
    [name],
  );
  return (rows[0] as { n: number }).n;
}

describe.runIf(postgresAvailable('PostgresBackend locks'))('PostgresBackend locks', () => {
  afterAll(closeAll);

  describe('hand-over between backends', () => {
    it('wakes the next holder by NOTIFY within milliseconds, far below the 250 ms fallback poll', async () => {
      const name = `handover-${uniqueTable()}`;
      const [a, b] = pair({ poolOptions: { application_name: name } });
      await listening(name, a, b);
      const timings = await handOvers(a, b, 20);
      console.info(`NOTIFY hand-over ms (release call → next lease): ${format(timings)}; median ${median(timings).toFixed(1)}`);
      // Heard releases cost a round trip or three; polling would cost up to the fallback interval.
      expect(median(timings), format(timings)).toBeLessThan(50);
      expect(Math.max(...timings), format(timings)).toBeLessThan(UNHEARD_RELEASE_POLL_MS);
    });

    it('with listen off, falls back to looking again every 250 ms', async () => {
      const [a, b] = pair({ listen: false });
      const timings = await handOvers(a, b, 6);
      console.info(`polling hand-over ms: ${format(timings)}`);
      // The waiter sleeps up to one poll interval after its failed attempt (30 ms before the release).
      expect(Math.max(...timings), format(timings)).toBeLessThan(UNHEARD_RELEASE_POLL_MS + 150);
      expect(median(timings), format(timings)).toBeGreaterThan(50);
    });

    it('listens again after its listening connection is killed, and releases are heard again', async () => {
      const name = `relisten-${uniqueTable()}`;
      const [a, b] = pair({ poolOptions: { application_name: name } });
      await listening(name, a, b);
      const killed = await admin().query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'`,
        [name],
      );
      expect(killed.rowCount).toBe(2);
      // The next waits fall back to polling while the connection comes back (on demand, backing off).
      const during = await handOvers(a, b, 4);
      await listening(name, a, b);
      const after = await handOvers(a, b, 10);
      console.info(`hand-over ms while listening again: ${format(during)}; afterwards: ${format(after)}`);
      expect(Math.max(...during), format(during)).toBeLessThan(UNHEARD_RELEASE_POLL_MS + 150);
      expect(median(after), format(after)).toBeLessThan(50);
    });
  });

  describe('exclusion and fencing', () => {
    it('lets exactly one of many backends in at a time; fencing tokens grow in grant order', async () => {
      const table = uniqueTable();
      const backends = [0, 1, 2, 3].map(() => createBackend({ table }));
      await backends[0]?.set('counter', bytes('0'));
      const tokens: bigint[] = [];
      const workers = backends.flatMap((backend) =>
        [0, 1, 2, 3, 4].map(async () => {
          const lease = (await backend.acquireLock('counter', { leaseMs: 10_000, waitMs: 20_000 })) as Lease;
          tokens.push(lease.fencingToken);
          const value = Number(new TextDecoder().decode(await backend.get('counter')));
          await sleep(2);
          expect(await backend.set('counter', bytes(String(value + 1)), { lease })).toBe('written');
          expect(await backend.releaseLock(lease)).toBe(true);
        }),
      );
      await Promise.all(workers);
      expect(new TextDecoder().decode(await backends[0]?.get('counter'))).toBe('20');
      expect(tokens).toEqual([...tokens].sort((x, y) => (x < y ? -1 : 1)));
      expect(new Set(tokens).size).toBe(20);
    });
  });

  describe('late answers', () => {
    it('gives back a lease whose statement answered after the call deadline', async () => {
      // A given pool without statement_timeout: the blocked acquire waits for the row lock past the deadline.
      const pool = new pg.Pool({ connectionString: postgresUrl as string, max: 2 });
      const table = uniqueTable();
      const backend = track(new PostgresBackend({ pool, table, operationTimeoutMs: 300 }));
      await backend.set('k', bytes('v'));
      const blocker = await admin().connect();
      try {
        await blocker.query('BEGIN');
        await blocker.query(`SELECT 1 FROM "${table}" WHERE key = 'k' FOR UPDATE`);
        const error = await backend.acquireLock('k', { leaseMs: 0, waitMs: 0 }).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(BackendTimeoutError);
        await blocker.query('COMMIT');
      } finally {
        blocker.release();
      }
      // The acquire then runs and wins (fence 1); the give-back frees the lock again.
      const givenBack = async (): Promise<boolean> => {
        const [row] = await rowsOf(table);
        return row?.['fence'] === '1' && row['lock_token'] === null;
      };
      const until = performance.now() + 3_000;
      while (performance.now() < until && !(await givenBack())) await sleep(20);
      expect(await rowsOf(table)).toMatchObject([{ key: 'k', lock_token: null, fence: '1' }]);
      await backend.close();
      await pool.end();
    });

    it("is stopped by the server's statement_timeout on a pool the backend built: BackendTimeoutError, nothing taken", async () => {
      const backend = createBackend({ operationTimeoutMs: 400 });
      await backend.set('k', bytes('v'));
      const blocker = await admin().connect();
      try {
        await blocker.query('BEGIN');
        await blocker.query(`SELECT 1 FROM "${backend.table}" WHERE key = 'k' FOR UPDATE`);
        const error = await backend.acquireLock('k', { leaseMs: 0, waitMs: 0 }).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(BackendTimeoutError);
        expect((error as BackendTimeoutError).cause).toMatchObject({ code: '57014' });
        await blocker.query('COMMIT');
      } finally {
        blocker.release();
      }
      expect(await rowsOf(backend.table)).toMatchObject([{ key: 'k', lock_token: null, fence: '0' }]);
    });
  });

  describe('close and bad input', () => {
    it('close() gives back held leases (one that never lapses too): another backend takes them at once', async () => {
      const [backend, other] = pair();
      expect(await backend.acquireLock('forever', { leaseMs: 0, waitMs: 0 })).toBeDefined();
      expect(await backend.acquireLock('long', { leaseMs: 60_000, waitMs: 0 })).toBeDefined();
      expect(await other.acquireLock('forever', { leaseMs: 1_000, waitMs: 0 })).toBeUndefined();
      await backend.close();
      expect((await rowsOf(backend.table)).map((row) => row['lock_token'])).toEqual([null, null]);
      expect((await other.acquireLock('forever', { leaseMs: 1_000, waitMs: 0 }))?.fencingToken).toBe(2n);
      expect((await other.acquireLock('long', { leaseMs: 1_000, waitMs: 0 }))?.fencingToken).toBe(2n);
    });

    it('a waiter interrupted by close() rejects with BackendClosedError; calls during and after close reject too', async () => {
      const [holder, backend] = pair();
      await holder.acquireLock('k', { leaseMs: 30_000, waitMs: 0 });
      const waiter = backend.acquireLock('k', { leaseMs: 1_000, waitMs: 10_000 }).catch((error: unknown) => error);
      await sleep(50);
      const closing = backend.close();
      await expect(backend.get('k')).rejects.toBeInstanceOf(BackendClosedError);
      expect(await waiter).toBeInstanceOf(BackendClosedError);
      await closing;
      await expect(backend.set('k', bytes('v'))).rejects.toBeInstanceOf(BackendClosedError);
      await expect(backend.acquireLock('k', { leaseMs: 1_000, waitMs: 0 })).rejects.toBeInstanceOf(BackendClosedError);
    });

    it('releaseLock({}) rejects with ValidationError', async () => {
      const backend = createBackend();
      await expect(backend.releaseLock({} as Lease)).rejects.toBeInstanceOf(ValidationError);
    });

    it('a 30-day waitMs on a held key is still waiting after 1 s', async () => {
      const [holder, backend] = pair();
      await holder.acquireLock('k', { leaseMs: 60_000, waitMs: 0 });
      const controller = new AbortController();
      let settled = false;
      const waiter = backend.acquireLock('k', { leaseMs: 1_000, waitMs: 30 * 24 * 3_600_000, signal: controller.signal }).finally(() => {
        settled = true;
      });
      await sleep(1_000);
      expect(settled).toBe(false);
      controller.abort(new Error('done waiting'));
      await expect(waiter).rejects.toThrow('done waiting');
    });
  });
});
