import { afterEach, beforeEach, vi, type MockInstance } from 'vitest';
import { GIVE_BACK_FAILED_WARNING, LockWaiters, wakeUpRetry, type RetryPolicy } from '../../src/index.js';
import { FakeLockProtocol } from './fake-lock-protocol.js';

/** What a LockWaiters test works with; fresh for every test. */
export interface LockWaitersHarness {
  /** The fake lock server behind every queue the test makes. */
  readonly server: FakeLockProtocol;
  /** A queue named `'FakeBackend'` over {@link server} (default policy: sleep until woken or lapse). */
  make(retry?: RetryPolicy): LockWaiters;
  /** The `LATCHKEY_GIVE_BACK_FAILED` warnings emitted so far, as `[message, options]`. */
  giveBackWarnings(): unknown[][];
}

/**
 * Installs fake timers (which also fake `performance.now()`) and a silenced `process.emitWarning`
 * spy for every test of the calling file, and closes every queue the test made afterwards.
 */
export function useLockWaitersHarness(): LockWaitersHarness {
  let server = new FakeLockProtocol();
  let emitWarning: MockInstance<typeof process.emitWarning> | undefined;
  const made: LockWaiters[] = [];

  beforeEach(() => {
    vi.useFakeTimers();
    server = new FakeLockProtocol();
    emitWarning = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  });

  afterEach(async () => {
    const closing = Promise.all(made.splice(0).map((locks) => locks.close()));
    await vi.runAllTimersAsync();
    await closing;
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  return {
    get server() {
      return server;
    },
    make(retry = wakeUpRetry()) {
      const locks = new LockWaiters({ name: 'FakeBackend', protocol: server, retry });
      made.push(locks);
      return locks;
    },
    giveBackWarnings() {
      return (emitWarning?.mock.calls ?? []).filter(
        ([, options]) => (options as { code?: string } | undefined)?.code === GIVE_BACK_FAILED_WARNING,
      );
    },
  };
}
