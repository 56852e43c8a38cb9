// A backend made before its server is up: the first calls fail promptly with the driver's
// reason, and the backend works as soon as the server answers (the driver alone would keep
// the topology its failed first connect closed, and fail every later call).
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { BackendUnavailableError } from '@latchkey/core';
import { getFreePort, startMongo, type MongoServer } from '@latchkey/test-servers';
import { MongoBackend } from '../../src/index.js';
import { bytes, mongoAvailable, mongoEngine, text } from './mongo-test-env.js';

const TIMEOUT_MS = 1000;
// Room for a loaded machine: the driver's error is due before the deadline, not this late.
const MARGIN_MS = 500;

/** How `call` failed and how long it took. */
async function failure(call: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const startedAt = performance.now();
  const error = await call().then(
    () => undefined,
    (reason: unknown) => reason,
  );
  return { error, ms: performance.now() - startedAt };
}

// Starts servers of its own (on a chosen port), so it needs the binaries, not an external server.
const canStartServers = mongoAvailable('MongoBackend reconnect') && mongoEngine !== 'external';

describe.runIf(canStartServers)('MongoBackend made before its server is up', () => {
  let server: MongoServer | undefined;
  let backend: MongoBackend | undefined;
  afterAll(async () => {
    await backend?.close();
    await server?.stop();
  });

  it('rejects BackendUnavailableError with the driver error within operationTimeoutMs, then works once the server is up', async () => {
    const port = await getFreePort();
    backend = new MongoBackend({
      url: `mongodb://127.0.0.1:${port}/`,
      dbName: 'latchkey_reconnect',
      collection: `r_${randomUUID().replaceAll('-', '')}`,
      operationTimeoutMs: TIMEOUT_MS,
      documentTtlIndex: false,
    });
    const up = backend;

    // Nothing listens: a failed server selection, not a bare deadline, and before the deadline.
    for (const attempt of [1, 2]) {
      const { error, ms } = await failure(() => up.get('k'));
      expect(error, `attempt ${attempt}: ${String(error)}`).toBeInstanceOf(BackendUnavailableError);
      const cause = (error as Error).cause;
      expect(cause, `attempt ${attempt} keeps the driver error`).toBeInstanceOf(Error);
      expect((cause as Error).name, `attempt ${attempt}`).toBe('MongoServerSelectionError');
      expect(ms, `attempt ${attempt} settled after ${Math.round(ms)} ms`).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
    }

    server = await startMongo({ port });
    // The very next calls work: no closed topology left over from the failed connects.
    const calls = await Promise.allSettled([
      up.set('k', bytes('v')),
      up.get('other'),
      up.acquireLock('lock', { leaseMs: 10_000, waitMs: 0 }),
    ]);
    expect(calls.map((call) => (call.status === 'fulfilled' ? 'ok' : String(call.reason)))).toEqual(['ok', 'ok', 'ok']);
    expect(text(await up.get('k'))).toBe('v');
  });
});
