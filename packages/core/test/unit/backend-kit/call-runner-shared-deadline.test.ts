import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { noteNextRun, settlesWithin } from '../../../src/backend-kit/call-runner.js';
import { BackendError, BackendTimeoutError, CallRunner, KeyValueStore, type StoredValue, type WriteOutcome } from '../../../src/index.js';
import { advance, observe } from '../../support/fake-time.js';
import { MapBackend } from '../../support/map-backend.js';

/** Work that never answers, like a request to a server that went silent. */
const silent = (): Promise<never> => new Promise<never>(() => undefined);

/** A backend whose data calls run under a CallRunner of its own, as the adapters' do; `stall` makes them never answer. */
class RunnerBackend extends MapBackend {
  readonly runner: CallRunner;
  stall = false;

  constructor(timeoutMs: number) {
    super();
    this.runner = new CallRunner({ name: 'RunnerBackend', timeoutMs });
  }

  override get(key: string): Promise<StoredValue | undefined> {
    return this.runner.run('get', () => (this.stall ? silent() : super.get(key)));
  }

  override set(key: string, value: StoredValue): Promise<WriteOutcome> {
    return this.runner.run('set', () => (this.stall ? silent() : super.set(key, value)));
  }
}

describe('CallRunner: work that answers at once', () => {
  it('resolves a plain value without arming a timer or leaving a call pending', async () => {
    vi.useFakeTimers();
    try {
      const calls = new CallRunner({ name: 'Sync', timeoutMs: 100 });
      const answer = calls.run('get', () => 'now');
      expect(vi.getTimerCount()).toBe(0);
      expect(calls.pending).toBe(0);
      expect(await answer).toBe('now');
      calls.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('maps a synchronous throw as a rejection, with the error as cause', async () => {
    const calls = new CallRunner({ name: 'Sync', timeoutMs: 100 });
    const failure = new Error('boom');
    const error = await calls
      .run('get', () => {
        throw failure;
      })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as Error).cause).toBe(failure);
    expect(calls.pending).toBe(0);
    calls.close();
  });

  it('rejects with the reason of a signal the work itself aborted, and hands the result to onLate', async () => {
    const calls = new CallRunner({ name: 'Sync', timeoutMs: 100 });
    const controller = new AbortController();
    const late: string[] = [];
    const reason = new Error('stop');
    const answer = calls.run(
      'get',
      () => {
        controller.abort(reason);
        return 'too late';
      },
      { signal: controller.signal, onLate: (value) => late.push(value) },
    );
    await expect(answer).rejects.toBe(reason);
    expect(late).toStrictEqual(['too late']);
    calls.close();
  });
});

describe('settlesWithin', () => {
  it('holds only for the promise the run after noteNextRun returned, from a runner no slower than asked', () => {
    const fast = new CallRunner({ name: 'Fast', timeoutMs: 100 });
    const slow = new CallRunner({ name: 'Slow', timeoutMs: 10_000 });
    const started: Promise<unknown>[] = [];
    const run = (runner: CallRunner): Promise<unknown> => {
      const promise = runner.run('get', silent);
      // They reject at close: handled here, as nothing else awaits them.
      started.push(promise.catch(() => undefined));
      return promise;
    };
    noteNextRun();
    const fromFast = run(fast);
    expect(settlesWithin(fromFast, 1000)).toBe(true);
    // Forgotten once asked.
    expect(settlesWithin(fromFast, 1000)).toBe(false);
    noteNextRun();
    expect(settlesWithin(run(slow), 1000)).toBe(false);
    // Not asked for: not noted.
    expect(settlesWithin(run(fast), 1000)).toBe(false);
    noteNextRun();
    run(fast);
    expect(settlesWithin(Promise.resolve(1), 1000)).toBe(false);
    fast.close();
    slow.close();
    expect(started).toHaveLength(4);
  });
});

describe('KeyValueStore over a backend with a CallRunner of its own', () => {
  const stores: KeyValueStore[] = [];
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    vi.useRealTimers();
  });

  async function storeOver(backend: RunnerBackend, operationTimeoutMs: number): Promise<KeyValueStore> {
    const store = new KeyValueStore(`shared-deadline-${stores.length}`);
    stores.push(store);
    await store.configure(backend, { operationTimeoutMs });
    return store;
  }

  it('adds no deadline of its own when the backend runner times out first: one timer per call in flight, its error', async () => {
    const backend = new RunnerBackend(50);
    const store = await storeOver(backend, 1000);
    await store.set('k', 'v');
    expect(await store.get('k')).toBe('v');
    backend.stall = true;
    const waiting = observe(store.get('k'));
    expect(vi.getTimerCount()).toBe(1);
    await advance(50);
    expect(waiting.error).toBeInstanceOf(BackendTimeoutError);
    expect((waiting.error as Error).message).toContain('RunnerBackend');
  });

  it('keeps its own deadline when the backend runner would time out later', async () => {
    const backend = new RunnerBackend(10_000);
    const store = await storeOver(backend, 50);
    backend.stall = true;
    const reading = observe(store.get('k'));
    const writing = observe(store.set('k', 'v'));
    await advance(50);
    for (const waiting of [reading, writing]) {
      expect(waiting.error).toBeInstanceOf(BackendTimeoutError);
      expect((waiting.error as Error).message).toContain('KeyValueStore');
    }
    backend.runner.close();
  });
});
