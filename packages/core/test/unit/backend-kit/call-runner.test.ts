import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  BackendClosedError,
  BackendError,
  BackendTimeoutError,
  BackendUnavailableError,
  CallRunner,
  NotFoundError,
  ValidationError,
  withDeadline,
  type Call,
  type CallInfo,
  type ConnectionState,
} from '../../../src/index.js';
import { advance, DAY_MS, flush, observe } from '../../support/fake-time.js';

/** Work that never answers, like a request to a server that went silent. */
const silent = (): Promise<never> => new Promise<never>(() => undefined);

/** A promise settled by hand. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A connection that becomes ready when the test says so. */
function connection(lastError?: unknown): ConnectionState & { open(): void; fail(error: unknown): void } {
  const ready = deferred<void>();
  let isReady = false;
  return {
    get ready() {
      return isReady;
    },
    whenReady: () => ready.promise,
    lastError,
    open() {
      isReady = true;
      ready.resolve();
    },
    fail(error) {
      ready.reject(error);
    },
  };
}

describe('CallRunner', () => {
  const runners: CallRunner[] = [];
  function runner(options: Partial<ConstructorParameters<typeof CallRunner>[0]> = {}): CallRunner {
    const made = new CallRunner({ name: 'FakeBackend', timeoutMs: 100, ...options });
    runners.push(made);
    return made;
  }

  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    for (const made of runners.splice(0)) made.close();
    vi.useRealTimers();
  });

  describe('results', () => {
    it('resolves what the work resolves or returns, and leaves nothing pending', async () => {
      const calls = runner();
      expect(await calls.run('get', async () => 7)).toBe(7);
      expect(await calls.run('plain', () => 'value')).toBe('value');
      expect(calls.pending).toBe(0);
    });

    it('gives the running work a live call: not settled, signal not aborted, check() passes', async () => {
      const calls = runner();
      const seen = await calls.run('get', (call) => {
        call.check();
        return { settled: call.settled, aborted: call.signal.aborted };
      });
      expect(seen).toStrictEqual({ settled: false, aborted: false });
    });
  });

  describe('one deadline timer', () => {
    it('serves 100 calls in flight with one timer, and times them all out', async () => {
      const calls = runner({ timeoutMs: 100 });
      const waiting = Array.from({ length: 100 }, (_, i) => observe(calls.run(`get ${i}`, silent)));
      expect(vi.getTimerCount()).toBe(1);
      expect(calls.pending).toBe(100);
      await advance(100);
      expect(waiting.every(({ error }) => error instanceof BackendTimeoutError)).toBe(true);
      expect(calls.pending).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
    });

    it('times each call out at its own deadline, re-arming the one timer', async () => {
      const calls = runner({ timeoutMs: 100 });
      const waiting = [];
      for (let i = 0; i < 3; i++) {
        waiting.push(observe(calls.run(`get ${i}`, silent)));
        await advance(10);
        expect(vi.getTimerCount()).toBe(1);
      }
      // Started at 0, 10 and 20 ms; now at 30 ms.
      await advance(69);
      expect(waiting.map(({ state }) => state)).toStrictEqual(['pending', 'pending', 'pending']);
      await advance(1);
      expect(waiting.map(({ state }) => state)).toStrictEqual(['rejected', 'pending', 'pending']);
      expect(vi.getTimerCount()).toBe(1);
      await advance(10);
      expect(waiting.map(({ state }) => state)).toStrictEqual(['rejected', 'rejected', 'pending']);
      await advance(10);
      expect(waiting.map(({ state }) => state)).toStrictEqual(['rejected', 'rejected', 'rejected']);
    });

    it('keeps a deadline beyond setTimeout range exact: 30 days is not 24.8 days', async () => {
      const calls = runner({ timeoutMs: 30 * DAY_MS });
      const waiting = observe(calls.run('get', silent));
      await advance(25 * DAY_MS);
      expect(waiting.state).toBe('pending');
      await advance(5 * DAY_MS - 1);
      expect(waiting.state).toBe('pending');
      await advance(1);
      expect(waiting.error).toBeInstanceOf(BackendTimeoutError);
    });

    it('arms no timer when timeoutMs is Infinity', async () => {
      const calls = runner({ timeoutMs: Infinity });
      const answer = deferred<string>();
      const waiting = observe(calls.run('get', () => answer.promise));
      expect(vi.getTimerCount()).toBe(0);
      await advance(365 * DAY_MS);
      expect(waiting.state).toBe('pending');
      answer.resolve('late but fine');
      await flush();
      expect(waiting.value).toBe('late but fine');
    });
  });

  describe('the deadline of a sent call', () => {
    it('rejects with BackendTimeoutError naming the backend, the call and timeoutMs, at timeoutMs', async () => {
      const calls = runner({ timeoutMs: 100 });
      const waiting = observe(calls.run('get', silent));
      await advance(99);
      expect(waiting.state).toBe('pending');
      await advance(1);
      const error = waiting.error as BackendTimeoutError;
      expect(error).toBeInstanceOf(BackendTimeoutError);
      expect(error.timeoutMs).toBe(100);
      expect(error.message).toContain('FakeBackend');
      expect(error.message).toContain('get');
    });

    it('aborts call.signal with the timeout error, whether taken before or after the deadline', async () => {
      const calls = runner({ timeoutMs: 100 });
      let before: AbortSignal | undefined;
      let call: Call | undefined;
      const waiting = observe(
        calls.run('get', (running) => {
          call = running;
          before = running.signal;
          return silent();
        }),
      );
      await advance(100);
      expect(before?.aborted).toBe(true);
      expect(before?.reason).toBe(waiting.error);
      expect(call?.signal.reason).toBe(waiting.error);
    });

    it('stops multi-step work at the next check() after the deadline', async () => {
      const calls = runner({ timeoutMs: 20 });
      const steps: number[] = [];
      let stoppedWith: unknown;
      const waiting = observe(
        calls.run('steps', async (call) => {
          try {
            for (let i = 0; i < 5; i++) {
              call.check();
              steps.push(i);
              await new Promise((resolve) => setTimeout(resolve, 15));
            }
          } catch (error) {
            stoppedWith = error;
            throw error;
          }
        }),
      );
      await advance(100);
      expect(steps).toStrictEqual([0, 1]);
      expect(waiting.error).toBeInstanceOf(BackendTimeoutError);
      expect(stoppedWith).toBe(waiting.error);
    });
  });

  describe('a connection that is not ready', () => {
    it('holds the call until the connection is ready, then sends it', async () => {
      const link = connection();
      const calls = runner({ timeoutMs: 100, connection: link });
      const work = vi.fn(() => 'sent');
      const waiting = observe(calls.run('get', work));
      await advance(50);
      expect(work).not.toHaveBeenCalled();
      link.open();
      await flush();
      expect(work).toHaveBeenCalledTimes(1);
      expect(waiting.value).toBe('sent');
    });

    it('rejects with BackendUnavailableError, connection.lastError as cause, at the deadline, and never calls the work', async () => {
      const refused = new Error('connect ECONNREFUSED 127.0.0.1:1');
      const link = connection(refused);
      const calls = runner({ timeoutMs: 100, connection: link });
      const work = vi.fn(() => 'sent');
      const waiting = observe(calls.run('get', work));
      await advance(100);
      const error = waiting.error as BackendUnavailableError;
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect(error.cause).toBe(refused);
      expect(error.message).toContain('ECONNREFUSED');
      expect(error.message).toContain('get');
      link.open();
      await flush();
      expect(work).not.toHaveBeenCalled();
    });

    it('gives BackendUnavailableError no cause when the connection has no lastError', async () => {
      const calls = runner({ timeoutMs: 100, connection: connection() });
      const waiting = observe(calls.run('get', () => 'sent'));
      await advance(100);
      expect(waiting.error).toBeInstanceOf(BackendUnavailableError);
      expect((waiting.error as Error).cause).toBeUndefined();
    });

    it('maps a failure to connect as not sent', async () => {
      const link = connection();
      const mapError = vi.fn((error: unknown, call: CallInfo) => new BackendUnavailableError(`${call.what}`, { cause: error }));
      const calls = runner({ connection: link, mapError });
      const waiting = observe(calls.run('get', () => 'sent'));
      const failure = new Error('auth failed');
      link.fail(failure);
      await flush();
      expect(mapError).toHaveBeenCalledWith(failure, expect.objectContaining({ what: 'get', sent: false }));
      expect((waiting.error as Error).cause).toBe(failure);
    });
  });

  describe('driver errors', () => {
    it('are mapped by mapError, told what the call was and that it was sent; its error rejects the call', async () => {
      const failure = new Error('WRONGTYPE');
      const mapped = new BackendError('mapped', { cause: failure });
      const mapError = vi.fn(() => mapped);
      const calls = runner({ timeoutMs: 100, mapError });
      await expect(calls.run('incr', () => Promise.reject(failure))).rejects.toBe(mapped);
      expect(mapError).toHaveBeenCalledWith(failure, { backend: 'FakeBackend', what: 'incr', sent: true, timeoutMs: 100 });
      expect(mapped.cause).toBe(failure);
    });

    it('become BackendError naming the backend and the call, with the driver error as cause, by default', async () => {
      const calls = runner();
      const failure = new Error('boom');
      const rejected = await calls.run('get', () => Promise.reject(failure)).catch((error: unknown) => error);
      expect(rejected).toBeInstanceOf(BackendError);
      expect((rejected as Error).cause).toBe(failure);
      expect((rejected as Error).message).toContain('FakeBackend');
      expect((rejected as Error).message).toContain('get');
      expect((rejected as Error).message).toContain('boom');
    });

    it('thrown synchronously by the work are handled like rejections', async () => {
      const calls = runner();
      const rejected = await calls
        .run('get', () => {
          throw 'not even an Error';
        })
        .catch((error: unknown) => error);
      expect(rejected).toBeInstanceOf(BackendError);
      expect((rejected as Error).cause).toBe('not even an Error');
      expect((rejected as Error).message).toContain('not even an Error');
    });

    it('pass through unchanged, mapError not asked, when they are latchkey errors already', async () => {
      const mapError = vi.fn(() => new BackendError('should not be used'));
      const calls = runner({ mapError });
      const notFound = new NotFoundError('k');
      const invalid = new ValidationError('bad');
      await expect(calls.run('get', () => Promise.reject(notFound))).rejects.toBe(notFound);
      await expect(
        calls.run('set', () => {
          throw invalid;
        }),
      ).rejects.toBe(invalid);
      expect(mapError).not.toHaveBeenCalled();
    });
  });

  describe('abort', () => {
    it('rejects at once with signal.reason unwrapped, aborts call.signal with it, and asks no mapper', async () => {
      const mapError = vi.fn(() => new BackendError('should not be used'));
      const calls = runner({ timeoutMs: 1000, mapError });
      const controller = new AbortController();
      let callSignal: AbortSignal | undefined;
      const waiting = observe(
        calls.run(
          'get',
          (call) => {
            callSignal = call.signal;
            return new Promise<never>((_, reject) => call.signal.addEventListener('abort', () => reject(call.signal.reason)));
          },
          { signal: controller.signal },
        ),
      );
      const reason = new Error('caller gave up');
      controller.abort(reason);
      await flush();
      expect(waiting.error).toBe(reason);
      expect(callSignal?.aborted).toBe(true);
      expect(callSignal?.reason).toBe(reason);
      expect(mapError).not.toHaveBeenCalled();
      expect(calls.pending).toBe(0);
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    });

    it('rejects with the reason of a signal already aborted, without calling the work', async () => {
      const calls = runner();
      const work = vi.fn(() => 'sent');
      const reason = new Error('already');
      await expect(calls.run('get', work, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
      expect(work).not.toHaveBeenCalled();
      expect(calls.pending).toBe(0);
    });

    it('hands a result the work produces after the abort to onLate', async () => {
      const calls = runner({ timeoutMs: 1000 });
      const controller = new AbortController();
      const answer = deferred<string>();
      const late: string[] = [];
      const waiting = observe(
        calls.run('acquire', () => answer.promise, { signal: controller.signal, onLate: (value) => late.push(value) }),
      );
      controller.abort(new Error('stop'));
      answer.resolve('lease');
      await flush();
      expect(waiting.state).toBe('rejected');
      expect(late).toStrictEqual(['lease']);
    });

    it('removes its abort listener once the call has settled', async () => {
      const calls = runner();
      const controller = new AbortController();
      await calls.run('get', () => 1, { signal: controller.signal });
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    });
  });

  describe('onLate', () => {
    it('receives a result that arrives after the deadline', async () => {
      const calls = runner({ timeoutMs: 10 });
      const late: string[] = [];
      const waiting = observe(
        calls.run('acquire', () => new Promise<string>((resolve) => setTimeout(() => resolve('lease'), 40)), {
          onLate: (value) => late.push(value),
        }),
      );
      await advance(10);
      expect(waiting.error).toBeInstanceOf(BackendTimeoutError);
      expect(late).toStrictEqual([]);
      await advance(30);
      expect(late).toStrictEqual(['lease']);
    });

    it('is not called for results in time, nor for errors after the deadline', async () => {
      const calls = runner({ timeoutMs: 10 });
      const onLate = vi.fn();
      expect(await calls.run('get', () => 'in time', { onLate })).toBe('in time');
      const answer = deferred<string>();
      const waiting = observe(calls.run('get', () => answer.promise, { onLate }));
      await advance(10);
      answer.reject(new Error('too late anyway'));
      await flush();
      expect(waiting.error).toBeInstanceOf(BackendTimeoutError);
      expect(onLate).not.toHaveBeenCalled();
    });
  });

  describe('call.check()', () => {
    /** Runs work that keeps its call, settles it with `settle`, and returns the call. */
    async function settledCall(
      calls: CallRunner,
      settle: () => Promise<void> | void,
      signal?: AbortSignal,
    ): Promise<{ call: Call; caller: unknown }> {
      let call: Call | undefined;
      const waiting = observe(
        calls.run(
          'steps',
          (running) => {
            call = running;
            return silent();
          },
          signal === undefined ? {} : { signal },
        ),
      );
      await settle();
      await flush();
      expect(call?.settled).toBe(true);
      return { call: call as Call, caller: waiting.error };
    }

    it('throws the BackendTimeoutError the caller got, once the deadline passed', async () => {
      const calls = runner({ timeoutMs: 50 });
      const { call, caller } = await settledCall(calls, () => advance(50));
      expect(caller).toBeInstanceOf(BackendTimeoutError);
      expect(() => call.check()).toThrow(caller as Error);
    });

    it('throws signal.reason once the caller aborted', async () => {
      const calls = runner();
      const controller = new AbortController();
      const reason = new Error('caller gave up');
      const { call, caller } = await settledCall(calls, () => controller.abort(reason), controller.signal);
      expect(caller).toBe(reason);
      expect(() => call.check()).toThrow(reason);
      expect(call.signal.reason).toBe(reason);
    });

    it('throws BackendClosedError once the runner closed', async () => {
      const calls = runner();
      const { call, caller } = await settledCall(calls, () => calls.close());
      expect(caller).toBeInstanceOf(BackendClosedError);
      expect(() => call.check()).toThrow(caller as Error);
    });
  });

  describe('close()', () => {
    it('rejects every pending call with BackendClosedError, aborts their signals and disarms the timer', async () => {
      const calls = runner({ timeoutMs: 1000 });
      const signals: AbortSignal[] = [];
      const waiting = [1, 2, 3].map(() =>
        observe(
          calls.run('get', (call) => {
            signals.push(call.signal);
            return silent();
          }),
        ),
      );
      calls.close();
      await flush();
      for (const { error } of waiting) {
        expect(error).toBeInstanceOf(BackendClosedError);
        expect((error as Error).message).toContain('FakeBackend');
      }
      expect(signals.every((signal) => signal.aborted)).toBe(true);
      expect(calls.pending).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
    });

    it('rejects every later call with BackendClosedError without calling the work', async () => {
      const calls = runner();
      calls.close();
      expect(calls.closed).toBe(true);
      const work = vi.fn(() => 'sent');
      const error = await calls.run('get', work).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(BackendClosedError);
      expect((error as Error).message).toContain('get');
      expect(work).not.toHaveBeenCalled();
    });

    it('still runs evenIfClosed calls, under the deadline', async () => {
      const calls = runner({ timeoutMs: 100 });
      calls.close();
      expect(await calls.run('release', () => true, { evenIfClosed: true })).toBe(true);
      const waiting = observe(calls.run('release', silent, { evenIfClosed: true }));
      await advance(100);
      expect(waiting.error).toBeInstanceOf(BackendTimeoutError);
    });

    it('leaves no timer behind an evenIfClosed call once it settles', async () => {
      const calls = runner({ timeoutMs: 10_000 });
      calls.close();
      expect(await calls.run('release', () => Promise.resolve(true), { evenIfClosed: true })).toBe(true);
      expect(vi.getTimerCount()).toBe(0);
    });

    it('failPending(error) settles every pending call with that error and leaves the runner open', async () => {
      const calls = runner();
      const waiting = [observe(calls.run('get', silent)), observe(calls.run('set', silent))];
      const lost = new BackendUnavailableError('connection lost');
      calls.failPending(lost);
      await flush();
      expect(waiting.map(({ error }) => error)).toStrictEqual([lost, lost]);
      expect(calls.closed).toBe(false);
      expect(await calls.run('get', () => 'again')).toBe('again');
    });
  });
});

describe('CallRunner: its timer and the process', () => {
  it('keeps the process alive only while a call is pending', async () => {
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    const calls = new CallRunner({ name: 'FakeBackend', timeoutMs: 60_000 });
    try {
      const answer = deferred<string>();
      const first = calls.run('get', () => answer.promise);
      expect(setTimeoutSpy).toHaveBeenCalledTimes(1);
      const timer = setTimeoutSpy.mock.results[0]?.value as NodeJS.Timeout;
      expect(timer.hasRef()).toBe(true);
      answer.resolve('done');
      await first;
      // Still armed (cheaper than a timer per call), but not holding the process open.
      expect(timer.hasRef()).toBe(false);
      const second = deferred<string>();
      const again = calls.run('get', () => second.promise);
      expect(setTimeoutSpy).toHaveBeenCalledTimes(1);
      expect(timer.hasRef()).toBe(true);
      second.resolve('done');
      await again;
      expect(timer.hasRef()).toBe(false);
    } finally {
      calls.close();
      setTimeoutSpy.mockRestore();
    }
  });
});

describe('withDeadline', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('resolves the result of the work and clears its timer', async () => {
    expect(await withDeadline('ping', 100, async () => 'pong')).toBe('pong');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects with BackendTimeoutError at timeoutMs, clears its timer, and hands a late result to onLate', async () => {
    const late: string[] = [];
    const waiting = observe(
      withDeadline('acquire', 50, () => new Promise<string>((resolve) => setTimeout(() => resolve('lease'), 80)), {
        onLate: (value) => late.push(value),
      }),
    );
    await advance(50);
    expect(waiting.error).toBeInstanceOf(BackendTimeoutError);
    expect((waiting.error as BackendTimeoutError).timeoutMs).toBe(50);
    await advance(30);
    expect(late).toStrictEqual(['lease']);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('names the backend and maps driver errors as told', async () => {
    const failure = new Error('boom');
    const mapError = vi.fn((error: unknown, call: CallInfo) => new BackendError(`${call.backend} ${call.what}`, { cause: error }));
    const rejected = await withDeadline('get', 100, () => Promise.reject(failure), { name: 'OneOff', mapError }).catch(
      (error: unknown) => error,
    );
    expect((rejected as Error).message).toBe('OneOff get');
    expect((rejected as Error).cause).toBe(failure);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects with signal.reason when the signal aborts, and clears its timer', async () => {
    const controller = new AbortController();
    const reason = new Error('stop');
    const waiting = observe(withDeadline('get', 1000, silent, { signal: controller.signal }));
    controller.abort(reason);
    await flush();
    expect(waiting.error).toBe(reason);
    expect(vi.getTimerCount()).toBe(0);
  });
});
