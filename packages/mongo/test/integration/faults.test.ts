import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendTimeoutError, BackendUnavailableError, LatchkeyError } from '@latchkey/core';
import { getFreePort, type MongoServer, requireService, startMongo } from '@latchkey/test-servers';
import { MongoBackend } from '../../src/index.js';
import { bytes, text } from './mongo-test-env.js';

const TIMEOUT_MS = 1000;
// Room for a loaded machine on top of the deadline: a call must settle by TIMEOUT_MS + MARGIN_MS.
const MARGIN_MS = 1000;

// The fault tests start a server of their own: killing the shared one would break the other
// files running beside them.
let server: MongoServer | undefined;
let unavailable: string | undefined;
try {
  server = await startMongo();
} catch (error) {
  unavailable = error instanceof Error ? error.message : String(error);
}

interface Settled {
  readonly name: string;
  readonly ms: number;
  readonly error: unknown;
}

/** Runs every call at once and reports how each settled and how long it took. */
async function settleAll(calls: Record<string, () => Promise<unknown>>): Promise<Settled[]> {
  return Promise.all(
    Object.entries(calls).map(async ([name, call]) => {
      const startedAt = performance.now();
      try {
        await call();
        return { name, ms: performance.now() - startedAt, error: undefined };
      } catch (error) {
        return { name, ms: performance.now() - startedAt, error };
      }
    }),
  );
}

function expectTypedFailures(results: readonly Settled[]): void {
  for (const { name, ms, error } of results) {
    expect(error, `${name} should have failed`).toBeInstanceOf(LatchkeyError);
    expect(
      [BackendUnavailableError, BackendTimeoutError].some((type) => error instanceof type),
      `${name}: ${String(error)}`,
    ).toBe(true);
    // Only the backend's own deadline has no driver error to keep.
    if (!(error instanceof BackendTimeoutError)) expect((error as Error).cause, `${name} keeps the driver error as cause`).toBeDefined();
    expect(ms, `${name} settled after ${Math.round(ms)} ms`).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
  }
}

/** Retries `call` until it succeeds (the driver notices a restarted server within a heartbeat or two). */
async function eventually<T>(call: () => Promise<T>, withinMs = 15_000): Promise<T> {
  const deadline = performance.now() + withinMs;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (performance.now() > deadline) throw error;
      await sleep(100);
    }
  }
}

describe.runIf(requireService('MongoBackend faults', server, unavailable))('MongoBackend when the server fails', () => {
  const url = server?.url as string;
  let backend: MongoBackend;

  beforeAll(() => {
    backend = new MongoBackend({
      url,
      dbName: 'latchkey_faults',
      collection: `f_${randomUUID().replaceAll('-', '')}`,
      operationTimeoutMs: TIMEOUT_MS,
      documentTtlIndex: false,
    });
  });
  afterAll(async () => {
    await backend?.close();
    await server?.stop();
  });

  function everyCall(lease: Awaited<ReturnType<MongoBackend['acquireLock']>>): Record<string, () => Promise<unknown>> {
    return {
      get: () => backend.get('k'),
      getMany: () => backend.getMany(['k', 'other']),
      set: () => backend.set('k', bytes('x')),
      'set with a lease': () => backend.set('held', bytes('x'), { lease: lease! }),
      setMany: () => backend.setMany([['a', bytes('a')]]),
      delete: () => backend.delete('a'),
      deleteMany: () => backend.deleteMany(['a']),
      'acquireLock (try once)': () => backend.acquireLock('free', { leaseMs: 10_000, waitMs: 0 }),
      // Not 'held': this backend waits for its own lease without asking the server.
      'acquireLock (waiting)': () => backend.acquireLock('wanted', { leaseMs: 10_000, waitMs: 3000 }),
      extendLock: () => backend.extendLock(lease!, 60_000),
      purgeExpired: () => backend.purgeExpired(),
    };
  }

  it('while the server is down every call settles within its deadline with a typed error; after a restart calls succeed again', async () => {
    await backend.set('k', bytes('before'));
    const lease = await backend.acquireLock('held', { leaseMs: 60_000, waitMs: 0 });
    expect(lease).toBeDefined();
    await server!.kill();
    expectTypedFailures(await settleAll({ ...everyCall(lease), releaseLock: () => backend.releaseLock(lease!) }));

    await server!.restart();
    expect(text(await eventually(() => backend.get('k')))).toBe('before');
    // The data and the lease survived the restart (FerretDB's SQLite files and mongod's data files are kept).
    expect(await backend.set('held', bytes('after'), { lease: lease! })).toBe('written');
    expect(await backend.acquireLock('held', { leaseMs: 10_000, waitMs: 0 })).toBeUndefined();
    expect(await backend.releaseLock(lease!)).toBe(true);
  });

  it('while the server is frozen every call settles within its deadline with a typed error; after it resumes calls succeed again', async () => {
    await eventually(() => backend.set('k', bytes('warm')));
    const lease = await backend.acquireLock('held', { leaseMs: 60_000, waitMs: 0 });
    expect(lease).toBeDefined();
    await server!.pause();
    try {
      expectTypedFailures(await settleAll(everyCall(lease)));
    } finally {
      await server!.resume();
    }
    // A write that timed out may still have happened (the frozen server ran it on resume).
    expect(['warm', 'x']).toContain(text(await eventually(() => backend.get('k'))));
    expect(await backend.set('after', bytes('resumed'))).toBe('written');
    expect(text(await backend.get('after'))).toBe('resumed');
    expect(await backend.releaseLock(lease!)).toBe(true);
  });
});

describe('MongoBackend with a given client that waits 30 s for a server', () => {
  it('still settles each call within operationTimeoutMs', async () => {
    const port = await getFreePort();
    const client = new MongoClient(`mongodb://127.0.0.1:${port}/`);
    const backend = new MongoBackend({ client, dbName: 'db', collection: 'c', operationTimeoutMs: 300, documentTtlIndex: false });
    try {
      const startedAt = performance.now();
      const error = await backend.get('k').then(
        () => undefined,
        (failure: unknown) => failure,
      );
      expect(error).toBeInstanceOf(BackendTimeoutError);
      expect(performance.now() - startedAt).toBeLessThan(300 + MARGIN_MS);
    } finally {
      await backend.close();
      await client.close();
    }
  });
});
