import { afterEach, describe, expect, it } from 'vitest';
import {
  BackendError,
  KeyValueStore,
  LockAcquireTimeoutError,
  lockAcquireChannel,
  lockReleaseChannel,
  ProxyBackend,
  type ConfigureOptions,
  type Lease,
  type LockAcquireMessage,
  type LockReleaseMessage,
} from '../../src/index.js';
import { MapBackend, sleep, uniqueName } from '../support/map-backend.js';
import { at, recordTraces, type TraceRecorder } from '../support/trace-recorder.js';

const SETTLED_OK = ['start', 'end', 'asyncStart', 'asyncEnd'];

const stops: (() => boolean)[] = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

async function traced(options: ConfigureOptions = {}) {
  const store = new KeyValueStore(uniqueName('traced-locks'));
  await store.configure(new MapBackend(), { lockSafetyWindowMs: 20, ...options });
  const acquires = recordTraces(lockAcquireChannel);
  const releases = recordTraces(lockReleaseChannel);
  stops.push(acquires.stop, releases.stop);
  return { store, acquires, releases };
}

function only<M>(trace: TraceRecorder<M>): M {
  const messages = trace.messages();
  expect(messages, JSON.stringify(trace.events.map((recorded) => recorded.snapshot))).toHaveLength(1);
  return messages[0] as M;
}

describe('lock waits on latchkey:lock:acquire', () => {
  it('publishes an uncontended acquire with the documented message', async () => {
    const { store, acquires } = await traced();
    const lock = await store.getLock('k').acquire({ waitMs: 1234 });
    const message = only(acquires);
    expect(acquires.of(message)).toStrictEqual(SETTLED_OK);
    expect(at(acquires, message, 'start')).toStrictEqual({
      store: store.name,
      operation: 'acquire',
      backend: 'MapBackend',
      key: undefined,
      waitMs: 1234,
      enabled: true,
      outcome: undefined,
      durationMs: undefined,
    });
    expect(message.outcome).toBe('acquired');
    expect(message.durationMs).toBeGreaterThanOrEqual(0);
    await lock.release();
  });

  it('publishes how long a contended acquire waited', async () => {
    const { store, acquires } = await traced();
    const holder = await store.getLock('k').acquire();
    const holdMs = 150;
    const waiting = store.getLock('k').acquire({ waitMs: 5000 });
    await sleep(holdMs);
    await holder.release();
    const lock = await waiting;
    const [, waited] = acquires.messages() as LockAcquireMessage[];
    // It waited at least as long as the holder slept (timers never fire early; 2 ms for clock
    // rounding), and no longer than that plus a generous allowance for a loaded machine.
    const timings = JSON.stringify(waited);
    expect(waited?.outcome, timings).toBe('acquired');
    expect(waited?.durationMs, timings).toBeGreaterThanOrEqual(holdMs - 2);
    expect(waited?.durationMs, timings).toBeLessThan(holdMs + 2000);
    await lock.release();
  });

  it('reports a wait that ran out as timeout, without an error event', async () => {
    const { store, acquires } = await traced();
    const holder = await store.getLock('k').acquire();
    const waitMs = 60;
    await expect(store.getLock('k').acquire({ waitMs })).rejects.toBeInstanceOf(LockAcquireTimeoutError);
    expect(await store.getLock('k').tryAcquire()).toBe(false);
    const [, timedOut, tried] = acquires.messages() as LockAcquireMessage[];
    expect(acquires.of(timedOut!)).toStrictEqual(SETTLED_OK);
    expect(timedOut, JSON.stringify(timedOut)).toMatchObject({ operation: 'acquire', waitMs, outcome: 'timeout' });
    expect(timedOut?.durationMs, JSON.stringify(timedOut)).toBeGreaterThanOrEqual(waitMs - 2);
    expect(tried).toMatchObject({ operation: 'tryAcquire', waitMs: 0, outcome: 'timeout' });
    await holder.release();
  });

  it('reports an aborted wait as aborted, without an error event', async () => {
    const { store, acquires } = await traced();
    const holder = await store.getLock('k').acquire();
    const controller = new AbortController();
    const reason = new Error('cancelled');
    setTimeout(() => controller.abort(reason), 20);
    await expect(store.getLock('k').acquire({ signal: controller.signal })).rejects.toBe(reason);
    const [, aborted] = acquires.messages() as LockAcquireMessage[];
    expect(acquires.of(aborted!)).toStrictEqual(SETTLED_OK);
    expect(aborted).toMatchObject({ outcome: 'aborted' });
    expect(aborted?.error).toBeUndefined();
    await holder.release();
  });

  it('publishes error when the backend fails the acquire', async () => {
    class Broken extends ProxyBackend {
      override acquireLock(): Promise<Lease | undefined> {
        return Promise.reject(new Error('no quorum'));
      }
    }
    const { store, acquires } = await traced({ proxies: [Broken] });
    const rejection = await store
      .getLock('k')
      .acquire()
      .catch((error: unknown) => error);
    expect(rejection).toBeInstanceOf(BackendError);
    const message = only(acquires);
    expect(acquires.of(message)).toStrictEqual(['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
    expect(message.error).toBe(rejection);
    expect(message.outcome).toBeUndefined();
  });

  it('marks locks of a store with locking: false as not enabled, and carries keys with traceKeys: true', async () => {
    const { store, acquires, releases } = await traced({ locking: false, traceKeys: true, lockTimeoutMs: 1000 });
    const lock = await store.getLock('user:7').acquire();
    await lock.release();
    expect(only(acquires)).toMatchObject({ enabled: false, outcome: 'acquired', key: 'user:7' });
    expect(only(releases)).toMatchObject({ outcome: 'released', key: 'user:7' });
  });
});

describe('lock releases on latchkey:lock:release', () => {
  it('publishes how long the lock was held, for release and for the give-back at close', async () => {
    const { store, releases } = await traced();
    const holdMs = 80;
    const released = await store.getLock('a').acquire();
    const keptUntilClose = await store.getLock('b').acquire();
    await sleep(holdMs);
    await released.release();
    await released.release(); // not active any more: nothing published
    await store.close();
    expect(keptUntilClose.active).toBe(false);
    const [first, atClose] = releases.messages() as LockReleaseMessage[];
    expect(releases.messages()).toHaveLength(2);
    expect(releases.of(first!)).toStrictEqual(SETTLED_OK);
    expect(first).toMatchObject({ store: store.name, operation: 'release', backend: 'MapBackend', key: undefined, outcome: 'released' });
    expect(first?.heldMs, JSON.stringify(first)).toBeGreaterThanOrEqual(holdMs - 2);
    expect(first?.durationMs).toBeGreaterThanOrEqual(0);
    expect(atClose).toMatchObject({ operation: 'close', outcome: 'released' });
    expect(atClose?.heldMs, JSON.stringify(atClose)).toBeGreaterThanOrEqual(holdMs - 2);
  });

  it('publishes error when the backend cannot be told, and the lock is inactive anyway', async () => {
    class Unreachable extends ProxyBackend {
      override releaseLock(): Promise<boolean> {
        return Promise.reject(new Error('link down'));
      }
    }
    const { store, releases } = await traced({ proxies: [Unreachable] });
    const lock = await store.getLock('k').acquire();
    const rejection = await lock.release().catch((error: unknown) => error);
    expect(rejection).toBeInstanceOf(BackendError);
    expect(lock.active).toBe(false);
    const message = only(releases);
    expect(releases.of(message)).toStrictEqual(['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
    expect(message.error).toBe(rejection);
    expect(message.outcome).toBeUndefined();
  });

  it('stops publishing once unsubscribed', async () => {
    const { store, acquires, releases } = await traced();
    for (const stop of stops.splice(0)) expect(stop()).toBe(true);
    expect(lockAcquireChannel.hasSubscribers || lockReleaseChannel.hasSubscribers).toBe(false);
    const lock = await store.getLock('k').acquire();
    await lock.release();
    expect(acquires.events).toHaveLength(0);
    expect(releases.events).toHaveLength(0);
  });
});
