import { BackendError, BackendUnavailableError, type Lease } from '@latchkey/core';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresBackend } from '../../src/index.js';
import { admin, closeAll, createBackend, postgresAvailable, postgresUrl, rowsOf, sleep, track, uniqueTable } from '../support/postgres.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (value: Uint8Array | undefined): string | undefined => (value === undefined ? undefined : new TextDecoder().decode(value));

describe.runIf(postgresAvailable('PostgresBackend data'))('PostgresBackend data', () => {
  afterAll(closeAll);

  describe('storage layout', () => {
    it('keeps one row per key: value, expiry, lock and a fence that outlives the value', async () => {
      const backend = createBackend();
      await backend.set('plain', bytes('v'));
      expect(await rowsOf(backend.table)).toEqual([
        { key: 'plain', value: Buffer.from('v'), expires_at: null, lock_token: null, lock_expires_at: null, fence: '0' },
      ]);
      const lease = (await backend.acquireLock('locked', { leaseMs: 60_000, waitMs: 0 })) as Lease;
      expect(await backend.set('locked', bytes('w'), { lease })).toBe('written');
      const [locked] = await rowsOf(backend.table); // ordered by key: 'locked' < 'plain'
      expect(locked).toMatchObject({ key: 'locked', value: Buffer.from('w'), lock_token: lease.token, fence: '1' });
      expect(locked?.['lock_expires_at']).toBeInstanceOf(Date);
      expect(await backend.delete('locked', { lease })).toBe('deleted');
      expect(await backend.releaseLock(lease)).toBe(true);
      expect(await rowsOf(backend.table)).toMatchObject([
        { key: 'locked', value: null, lock_token: null, fence: '1' },
        { key: 'plain', value: Buffer.from('v'), fence: '0' },
      ]);
      expect((await backend.acquireLock('locked', { leaseMs: 1_000, waitMs: 0 }))?.fencingToken).toBe(2n);
    });

    it('creates the table in the schema it names, keeping case', async () => {
      const schema = uniqueTable('S');
      await admin().query(`CREATE SCHEMA "${schema}"`);
      try {
        const backend = track(new PostgresBackend({ url: postgresUrl as string, table: `${schema}.Kv` }));
        await backend.set('k', bytes('v'));
        const found = await admin().query('SELECT table_name FROM information_schema.tables WHERE table_schema = $1', [schema]);
        expect(found.rows).toEqual([{ table_name: 'Kv' }]);
        expect(text(await backend.get('k'))).toBe('v');
        await backend.close();
      } finally {
        await admin().query(`DROP SCHEMA "${schema}" CASCADE`);
      }
    });

    it('with createTable off, a missing table is a BackendError naming the relation, and nothing is created', async () => {
      const backend = createBackend({ createTable: false });
      const error = await backend.get('k').catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(BackendError);
      expect((error as BackendError).cause).toMatchObject({ code: '42P01' });
      expect((await admin().query('SELECT to_regclass($1) AS found', [`"${backend.table}"`])).rows[0]).toEqual({ found: null });
    });

    it('two backends creating the same table at once both succeed', async () => {
      const table = uniqueTable();
      const backends = [0, 1, 2, 3].map(() => createBackend({ table }));
      await Promise.all(backends.map((backend, i) => backend.set(`k${i}`, bytes(`v${i}`))));
      expect(await backends[0]?.getMany(['k0', 'k1', 'k2', 'k3'])).toEqual(['v0', 'v1', 'v2', 'v3'].map((v) => Buffer.from(v)));
    });
  });

  describe('expiry', () => {
    it("is set on the server's clock from the time left, whatever this process's clock says", async () => {
      const backend = createBackend();
      await backend.set('k', bytes('v'), { expiresAt: Date.now() + 60_000 });
      const { rows } = await admin().query(
        `SELECT extract(epoch FROM expires_at - clock_timestamp()) * 1000 AS left_ms FROM "${backend.table}"`,
      );
      const left = Number(rows[0]?.left_ms);
      // Between the call and this read at most a few hundred ms pass on a loaded machine.
      expect(left).toBeGreaterThan(59_000);
      expect(left).toBeLessThanOrEqual(60_000);
    });

    it('hides an expired value from get, getMany and delete before any purge', async () => {
      const backend = createBackend({ purgeIntervalMs: 0 });
      await backend.set('k', bytes('v'), { expiresAt: Date.now() + 50 });
      await backend.setMany([['m', bytes('w')]], { expiresAt: Date.now() + 50 });
      await sleep(100);
      expect(await backend.get('k')).toBeUndefined();
      expect(await backend.getMany(['k', 'm'])).toEqual([undefined, undefined]);
      expect(await backend.delete('k')).toBe('missing');
      expect((await rowsOf(backend.table)).map((row) => row['key'])).toEqual(['k', 'm']);
    });
  });

  describe('purge', () => {
    it('removes expired values in bounded batches; rows that held a lock keep their fence', async () => {
      const backend = createBackend({ purgeIntervalMs: 0 });
      await backend.setMany(
        ['a', 'b', 'c', 'd'].map((key) => [key, bytes(key)]),
        { expiresAt: Date.now() + 20 },
      );
      const lease = (await backend.acquireLock('fenced', { leaseMs: 0, waitMs: 0 })) as Lease;
      await backend.set('fenced', bytes('f'), { lease, expiresAt: Date.now() + 20 });
      await backend.releaseLock(lease);
      await backend.set('live', bytes('l'));
      await backend.set('gone', bytes('g'));
      await backend.delete('gone');
      await sleep(50);
      const counts = [
        await backend.purgeExpired(2),
        await backend.purgeExpired(2),
        await backend.purgeExpired(2),
        await backend.purgeExpired(2),
      ];
      expect(counts).toEqual([2, 2, 2, 0]);
      expect(await rowsOf(backend.table)).toEqual([
        { key: 'fenced', value: null, expires_at: null, lock_token: null, lock_expires_at: null, fence: '1' },
        { key: 'live', value: Buffer.from('l'), expires_at: null, lock_token: null, lock_expires_at: null, fence: '0' },
      ]);
      expect((await backend.acquireLock('fenced', { leaseMs: 1_000, waitMs: 0 }))?.fencingToken).toBe(2n);
    });

    it('runs in the background every purgeIntervalMs once the backend is in use', async () => {
      const backend = createBackend({ purgeIntervalMs: 100 });
      await backend.set('k', bytes('v'), { expiresAt: Date.now() + 10 });
      const until = performance.now() + 2_000;
      while ((await rowsOf(backend.table)).length > 0 && performance.now() < until) await sleep(25);
      expect(await rowsOf(backend.table)).toEqual([]);
    });
  });

  describe('batches', () => {
    it('round-trip keys an array literal must escape, in input order with duplicates', async () => {
      const backend = createBackend();
      const keys = ['a,b', '{x}', '"q"', 'back\\slash', 'NULL', ' spaced ', 'ü 😀'];
      await backend.setMany(keys.map((key) => [key, bytes(`v:${key}`)]));
      const wanted = [...keys, 'missing', keys[0] as string];
      expect((await backend.getMany(wanted)).map(text)).toEqual([...keys.map((key) => `v:${key}`), undefined, 'v:a,b']);
      await backend.deleteMany(['NULL', '{x}', 'missing', 'NULL']);
      expect((await backend.getMany(['NULL', '{x}', 'a,b'])).map(text)).toEqual([undefined, undefined, 'v:a,b']);
    });

    it('store every byte of large and empty values, in one setMany', async () => {
      const backend = createBackend();
      const large = Uint8Array.from({ length: 1024 * 1024 }, (_, i) => (i * 7) % 256);
      await backend.setMany([
        ['large', large],
        ['empty', new Uint8Array(0)],
      ]);
      expect(Buffer.compare(Buffer.from((await backend.get('large')) as Uint8Array), Buffer.from(large))).toBe(0);
      expect(await backend.get('empty')).toEqual(Buffer.alloc(0));
    });

    it('never deadlock: overlapping setMany and deleteMany in opposite orders all complete', async () => {
      const table = uniqueTable();
      const [one, two] = [createBackend({ table }), createBackend({ table })] as [PostgresBackend, PostgresBackend];
      const keys = Array.from({ length: 50 }, (_, i) => `k${i}`);
      const reversed = [...keys].reverse();
      const rounds = Array.from({ length: 20 }, (_, round) =>
        round % 2 === 0
          ? Promise.all([one.setMany(keys.map((key) => [key, bytes('1')])), two.setMany(reversed.map((key) => [key, bytes('2')]))])
          : Promise.all([one.deleteMany(reversed), two.setMany(keys.map((key) => [key, bytes('3')]))]),
      );
      await expect(Promise.all(rounds)).resolves.toHaveLength(20);
    });
  });

  describe('connection loss', () => {
    it('rejects a statement whose session the server ends with BackendUnavailableError, and the next call reconnects', async () => {
      const name = `terminated-${uniqueTable()}`;
      const backend = createBackend({ poolOptions: { application_name: name } });
      await backend.set('k', bytes('v'));
      const blocker = await admin().connect();
      let settled: unknown;
      try {
        await blocker.query('BEGIN');
        await blocker.query(`SELECT 1 FROM "${backend.table}" WHERE key = 'k' FOR UPDATE`);
        // Blocked behind the row lock, on a connection the pool has handed out.
        const pending = backend.set('k', bytes('w')).catch((error: unknown) => error);
        await sleep(100);
        const ended = await admin().query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND state = $2',
          [name, 'active'],
        );
        expect(ended.rowCount).toBe(1);
        settled = await pending;
        await blocker.query('COMMIT');
      } finally {
        blocker.release();
      }
      expect(settled).toBeInstanceOf(BackendUnavailableError);
      expect((settled as BackendUnavailableError).cause).toMatchObject({ code: '57P01' });
      expect(text(await backend.get('k'))).toBe('v');
    });
  });

  describe('pools', () => {
    it('uses a given pool and leaves it open on close; one it built is ended', async () => {
      const pool = new pg.Pool({ connectionString: postgresUrl as string, max: 3 });
      try {
        const given = new PostgresBackend({ pool, table: uniqueTable() });
        await given.set('k', bytes('v'));
        await given.close();
        expect(pool.ended).toBe(false);
        expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      } finally {
        await pool.end();
      }
      const built = new PostgresBackend({ url: postgresUrl as string, table: uniqueTable() });
      await built.set('k', bytes('v'));
      await built.close();
      expect(built.pool.ended).toBe(true);
    });

    it('gives a pool it builds the server-side statement_timeout below the call deadline', async () => {
      const backend = createBackend({ operationTimeoutMs: 1_000 });
      const client = await backend.pool.connect();
      try {
        expect((await client.query('SHOW statement_timeout')).rows).toEqual([{ statement_timeout: '900ms' }]);
      } finally {
        client.release();
      }
    });
  });
});
