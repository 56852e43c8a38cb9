import { BackendTimeoutError, BackendUnavailableError, LatchkeyError, type Lease } from '@latchkey/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPostgresBinaries, type PostgresServer, requireService, startPostgres } from '@latchkey/test-servers';
import { PostgresBackend } from '../../src/index.js';

const TIMEOUT_MS = 500;
/** How late past its deadline a call may settle on this (shared, 2-core) machine. */
const MARGIN_MS = 400;

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Settled {
  readonly ms: number;
  readonly error: unknown;
}

/** Runs `call` and records how long it took to settle and how. */
async function timed(call: () => Promise<unknown>): Promise<Settled> {
  const started = performance.now();
  try {
    await call();
    return { ms: performance.now() - started, error: undefined };
  } catch (error) {
    return { ms: performance.now() - started, error };
  }
}

/** Every kind of call, once each, concurrently. */
function everyCall(backend: PostgresBackend, tag: string): Promise<Settled>[] {
  return [
    timed(() => backend.get(`${tag}-g`)),
    timed(() => backend.set(`${tag}-s`, bytes('v'), { expiresAt: Date.now() + 60_000 })),
    timed(() => backend.getMany([`${tag}-a`, `${tag}-b`, `${tag}-c`])),
    timed(() =>
      backend.setMany([
        [`${tag}-a`, bytes('a')],
        [`${tag}-b`, bytes('b')],
      ]),
    ),
    timed(() => backend.delete(`${tag}-d`)),
    timed(() => backend.deleteMany([`${tag}-a`, `${tag}-z`])),
    timed(async () => {
      const lease = await backend.acquireLock(`${tag}-l`, { leaseMs: 1_000, waitMs: 0 });
      if (lease !== undefined) await backend.releaseLock(lease);
    }),
  ];
}

async function untilHealthy(backend: PostgresBackend, deadlineMs = 20_000): Promise<void> {
  const until = performance.now() + deadlineMs;
  for (;;) {
    try {
      await backend.get('health');
      return;
    } catch (error) {
      if (performance.now() > until) throw error;
      await sleep(50);
    }
  }
}

function describeSettled(results: readonly Settled[]): string {
  return results.map(({ ms, error }) => `${ms.toFixed(0)} ms ${error === undefined ? 'ok' : (error as Error).constructor.name}`).join('; ');
}

/** Every call settled within the deadline (plus margin), with a result or a typed outage error; at least one failed. */
function expectTypedOutage(results: readonly Settled[]): void {
  const summary = describeSettled(results);
  for (const { ms, error } of results) {
    expect(ms, summary).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
    if (error !== undefined) {
      expect(error, summary).toBeInstanceOf(LatchkeyError);
      expect(error instanceof BackendUnavailableError || error instanceof BackendTimeoutError, summary).toBe(true);
      // A timeout of the backend's own deadline has no driver error; every other failure keeps one.
      if (error instanceof BackendUnavailableError) expect(error.cause, summary).toBeDefined();
    }
  }
  expect(
    results.some(({ error }) => error !== undefined),
    summary,
  ).toBe(true);
}

function binariesFound(): true | undefined {
  try {
    findPostgresBinaries();
    return true;
  } catch {
    return undefined;
  }
}

describe.runIf(requireService('PostgresBackend fault tests', binariesFound(), 'no initdb on the PATH or under /usr/lib/postgresql'))(
  'PostgresBackend faults on a dedicated server',
  () => {
    let server: PostgresServer;
    const backends: PostgresBackend[] = [];
    const make = (table = 'faults'): PostgresBackend => {
      const backend = new PostgresBackend({ url: server.url, table, operationTimeoutMs: TIMEOUT_MS });
      backends.push(backend);
      return backend;
    };

    beforeAll(async () => {
      server = await startPostgres();
    });

    afterAll(async () => {
      await Promise.all(backends.map((backend) => backend.close()));
      await server.stop();
    });

    it('fails fast with BackendUnavailableError when nothing listens', async () => {
      const backend = new PostgresBackend({ url: 'postgres://nobody@127.0.0.1:1/none', operationTimeoutMs: TIMEOUT_MS });
      backends.push(backend);
      const result = await timed(() => backend.get('k'));
      expect(result.error).toBeInstanceOf(BackendUnavailableError);
      expect((result.error as Error).cause).toMatchObject({ code: 'ECONNREFUSED' });
      expect(result.ms).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
    });

    it('settles every call with a typed error while the server is down, then works again, waking waiters by NOTIFY', async () => {
      const backend = make('killed');
      const other = make('killed');
      await untilHealthy(backend);
      await backend.set('durable', bytes('kept'));
      const held = (await other.acquireLock('w', { leaseMs: 10_000, waitMs: 0 })) as Lease;
      const waiting = timed(() => backend.acquireLock('w', { leaseMs: 1_000, waitMs: 5_000 }));
      await sleep(50);
      const inFlight = everyCall(backend, 'before');
      await server.kill();
      expectTypedOutage(await Promise.all([...inFlight, ...everyCall(backend, 'down'), waiting]));
      await sleep(300);
      expectTypedOutage(await Promise.all(everyCall(backend, 'still-down')));
      await server.restart();
      await untilHealthy(backend);
      await untilHealthy(other);
      // A killed server keeps what it committed (crash recovery replays the WAL): the lease too.
      expect(new TextDecoder().decode(await backend.get('durable'))).toBe('kept');
      const after = await Promise.all(everyCall(backend, 'after'));
      expect(
        after.map(({ error }) => error),
        describeSettled(after),
      ).toEqual(after.map(() => undefined));
      // The listening connections come back on demand: the next release is heard at once.
      const next = backend.acquireLock('w', { leaseMs: 1_000, waitMs: 5_000 });
      await sleep(300);
      const released = performance.now();
      expect(await other.releaseLock(held)).toBe(true);
      expect((await next)?.fencingToken).toBe(2n);
      const handOverMs = performance.now() - released;
      expect(handOverMs, `hand-over after the restart took ${handOverMs.toFixed(1)} ms`).toBeLessThan(200);
    });

    it('ends sessions of a server shutting down with BackendUnavailableError, and works once it is back', async () => {
      const backend = make('shutdown');
      await untilHealthy(backend);
      // restart() is a fast shutdown (sessions are terminated, 57P01) followed by a start.
      const restarting = server.restart();
      const during = await Promise.all(everyCall(backend, 'shutdown'));
      await restarting;
      for (const { ms, error } of during) {
        expect(ms).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
        if (error !== undefined) expect(error instanceof BackendUnavailableError || error instanceof BackendTimeoutError).toBe(true);
      }
      await untilHealthy(backend);
      expect(await backend.set('back', bytes('ok'))).toBe('written');
    });

    it('settles calls with BackendTimeoutError while the server is frozen, and recovers when it resumes', async () => {
      const backend = make('paused');
      await untilHealthy(backend);
      await server.pause();
      let results: Settled[];
      try {
        results = await Promise.all(everyCall(backend, 'frozen'));
      } finally {
        await server.resume();
      }
      expectTypedOutage(results);
      expect(
        results.some(({ error }) => error instanceof BackendTimeoutError),
        describeSettled(results),
      ).toBe(true);
      await untilHealthy(backend);
      expect(await backend.set('thawed', bytes('ok'))).toBe('written');
    });

    it('never lets a locked write that timed out land after its lease lapsed', async () => {
      const backend = make('late');
      await untilHealthy(backend);
      const lease = (await backend.acquireLock('k', { leaseMs: 200, waitMs: 0 })) as Lease;
      await server.pause();
      let late: Settled;
      try {
        late = await timed(() => backend.set('k', bytes('late'), { lease }));
        await sleep(100);
      } finally {
        await server.resume();
      }
      expect(late.error).toBeInstanceOf(BackendTimeoutError);
      await untilHealthy(backend);
      // The statement ran after the resume, on the server's clock: the lease had lapsed by then.
      await sleep(100);
      expect(await backend.get('k')).toBeUndefined();
    });
  },
);
