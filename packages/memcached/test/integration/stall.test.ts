import { readFile } from 'node:fs/promises';
import type { Lease } from '@latchkey/core';
import { Client } from 'memjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireService, type SingleServer, startMemcached, which } from '@latchkey/test-servers';
import { MemcachedBackend } from '../../src/index.js';
import { bytes, sleep, uniquePrefix } from '../support/targets.js';

const LEASE_MS = 2000;
/** Far above the stalls: the acquire sent during one must wait for the server, not time out. */
const DEADLINE_MS = 10_000;
/** How often the peer tries to take the key, ms. */
const POLL_MS = 20;
/**
 * The latest a lapsed lease may still block the peer, after its leaseMs: two spare ticks of
 * memcached's once-a-second clock, the measurement's width, and a second for a loaded machine.
 */
const LAPSE_WITHIN_MS = 3000;
/** The relative expiry (s) of the control item sent with each acquire. */
const CONTROL_EXPTIME_S = 4;
/** Stalled trials wanted per stall length: the 3.5 s stall is the one a relative lease expiry does not survive. */
const WANTED: Readonly<Record<number, number>> = { 3500: 2, 1500: 1 };
/** Trials at most: memcached does not serve every stall's queued requests before its clock catches up. */
const MAX_TRIALS = 14;

// Pauses its own server (SIGSTOP/SIGCONT), so it starts one instead of sharing.
const installed = which('memcached') === undefined ? undefined : 'memcached';

interface Trial {
  readonly pauseMs: number;
  /** When the peer first got the key, ms after the lease's attempt started. */
  readonly takenAfterMs: number;
  /** How long the control item (relative expiry 4 s, sent right behind the acquire) lived, ms. */
  readonly controlLivedMs: number;
  /** Whether the control shows that the server's clock was behind by most of the stall. */
  readonly stale: boolean;
}

describe.runIf(requireService('MemcachedBackend after a server stall', installed, 'memcached is not installed'))(
  'MemcachedBackend after a server stall',
  () => {
    let server: SingleServer;
    let client: Client;
    let holder: MemcachedBackend;
    let peer: MemcachedBackend;
    const trials: Trial[] = [];

    beforeAll(async () => {
      server = await startMemcached();
      const keyPrefix = uniquePrefix();
      // The holder's client, shared with the control writes so that they queue on the same
      // connection, behind the acquire, and are served with the same clock. memjs's own
      // timeouts must outlast the stalls.
      const seconds = DEADLINE_MS / 1000;
      client = Client.create(server.url, { timeout: seconds, conntimeout: seconds, logger: { log: () => undefined } });
      holder = new MemcachedBackend({ client, keyPrefix, operationTimeoutMs: DEADLINE_MS });
      peer = new MemcachedBackend({ servers: server.url, keyPrefix, operationTimeoutMs: DEADLINE_MS });
      // A backend in use: it has been taking locks for a while (and so has read the server's clock).
      const until = performance.now() + 2500;
      while (performance.now() < until) {
        const lease = await holder.acquireLock('warm-up', { leaseMs: LEASE_MS, waitMs: 0 });
        if (lease !== undefined) await holder.releaseLock(lease);
        await sleep(100);
      }
    });
    afterAll(async () => {
      console.info(`[memcached stall] ${JSON.stringify(trials)}`);
      await holder?.close();
      await peer?.close();
      client?.close();
      if (server?.process.running === true) await server.resume();
      await server?.stop();
    });

    /**
     * Stops the server for `pauseMs`; the holder's acquire of `key` and the control write are
     * sent 100 ms before it resumes, so they wait in its socket buffer as requests do in a stall.
     */
    async function leaseGrantedAfterStall(key: string, pauseMs: number): Promise<{ lease: Lease; controlSentAt: number }> {
      await server.pause();
      await stopped(server.pid);
      await sleep(pauseMs - 100);
      const acquiring = holder.acquireLock(key, { leaseMs: LEASE_MS, waitMs: 0 });
      // On the same connection: the server reads both in one go, with one reading of its clock.
      const controlSentAt = performance.now();
      const control = client.set(`${holder.keyPrefix}control:${key}`, 'c', { expires: CONTROL_EXPTIME_S });
      await sleep(100);
      await server.resume();
      const [lease] = await Promise.all([acquiring, control]);
      expect(lease, `the holder won ${key}`).toBeDefined();
      return { lease: lease as Lease, controlSentAt };
    }

    /** Tries to take `key` with the peer every {@link POLL_MS} until it succeeds; when it did. */
    async function takenByPeerAt(key: string): Promise<number> {
      for (;;) {
        const lease = await peer.acquireLock(key, { leaseMs: LEASE_MS, waitMs: 0 });
        if (lease !== undefined) {
          const at = performance.now();
          await peer.releaseLock(lease);
          return at;
        }
        await sleep(POLL_MS);
      }
    }

    async function controlLivedMs(key: string, sentAt: number): Promise<number> {
      for (;;) {
        const { value } = await client.get(`${holder.keyPrefix}control:${key}`);
        if (value === null) return performance.now() - sentAt;
        await sleep(POLL_MS);
      }
    }

    const staleTrials = (pauseMs: number): number => trials.filter((trial) => trial.pauseMs === pauseMs && trial.stale).length;

    it(
      'a lease granted by a server whose clock lags after a 1.5 s or a 3.5 s stall lives at least its leaseMs',
      { timeout: 180_000 },
      async () => {
        for (let trial = 0; trial < MAX_TRIALS; trial++) {
          const pauseMs = [3500, 1500].find((ms) => staleTrials(ms) < (WANTED[ms] as number));
          if (pauseMs === undefined) break;
          const key = `stalled-${trial}`;
          const { lease, controlSentAt } = await leaseGrantedAfterStall(key, pauseMs);
          const [takenAt, controlMs] = await Promise.all([takenByPeerAt(key), controlLivedMs(key, controlSentAt)]);
          trials.push({
            pauseMs,
            takenAfterMs: Math.round(takenAt - (lease.acquiredAt as number)),
            controlLivedMs: Math.round(controlMs),
            // A current clock keeps a 4 s expiry more than 3 s; one behind by the stall, about 4 s minus it.
            stale: controlMs < CONTROL_EXPTIME_S * 1000 - pauseMs + 500,
          });
          // The holder's writes are refused only once another client could take the key.
          expect(await holder.set(key, bytes('late'), { lease })).toBe('lease-lost');
        }
        const timings = JSON.stringify(trials);
        for (const { takenAfterMs } of trials) {
          expect(takenAfterMs, `another client took a key too early: ${timings}`).toBeGreaterThanOrEqual(LEASE_MS);
          expect(takenAfterMs, `a lease did not lapse in time: ${timings}`).toBeLessThan(LEASE_MS + LAPSE_WITHIN_MS);
        }
        // Only trials whose control item shows the lagging clock prove anything.
        for (const [pauseMs, wanted] of Object.entries(WANTED)) {
          expect(staleTrials(Number(pauseMs)), `stalls of ${pauseMs} ms whose queued requests met a lagging clock: ${timings}`).toBe(
            wanted,
          );
        }
      },
    );
  },
);

/** Waits until the kernel reports `pid` stopped (SIGSTOP is delivered asynchronously). */
async function stopped(pid: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (/^\d+ \(.*\) [tT] /.test(stat)) return;
    await sleep(10);
  }
  throw new Error(`process ${pid} did not stop`);
}
