import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  LockWaiters,
  ReleaseListener,
  wakeUpRetry,
  type ReleaseConnection,
  type ReleaseEvents,
  type ReleaseListenerOptions,
  type ReleaseTarget,
} from '../../../src/index.js';
import { FakeLockProtocol } from '../../support/fake-lock-protocol.js';
import { advance, flush, observe } from '../../support/fake-time.js';

/** One connection the fake server opened: the test decides when (and whether) it listens. */
class FakeConnection implements ReleaseConnection {
  readonly ready: Promise<void>;
  closed = 0;
  #resolve: () => void = () => undefined;
  #reject: (error: Error) => void = () => undefined;

  constructor(readonly events: ReleaseEvents) {
    this.ready = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  listens(): void {
    this.#resolve();
  }

  fails(): void {
    this.#reject(new Error('connection refused'));
  }

  close(): void {
    this.closed += 1;
  }
}

/** Opens fake connections and records them; `refuse` makes `open` throw instead. */
class FakeReleaseServer {
  readonly connections: FakeConnection[] = [];
  /** When set, each open either throws (`'throw'`) or fails to listen (`'reject'`). */
  refuse: 'throw' | 'reject' | undefined;
  /** Opened connections listen at once (no test step needed). */
  autoListen = false;
  readonly #opened: number[] = [];

  readonly open = (events: ReleaseEvents): ReleaseConnection => {
    this.#opened.push(performance.now());
    if (this.refuse === 'throw') throw new Error('cannot open');
    const connection = new FakeConnection(events);
    this.connections.push(connection);
    if (this.refuse === 'reject') connection.fails();
    else if (this.autoListen) connection.listens();
    return connection;
  };

  /** `performance.now()` of every open, failed or not. */
  get openedAt(): readonly number[] {
    return this.#opened;
  }

  get last(): FakeConnection {
    const connection = this.connections.at(-1);
    if (connection === undefined) throw new Error('no connection was opened');
    return connection;
  }
}

/** Records what the listener woke. */
class RecordingTarget implements ReleaseTarget {
  readonly woken: string[] = [];
  wakeAlls = 0;
  wake(key: string): void {
    this.woken.push(key);
  }
  wakeAll(): void {
    this.wakeAlls += 1;
  }
}

describe('ReleaseListener', () => {
  let server: FakeReleaseServer;
  let target: RecordingTarget;
  const made: ReleaseListener[] = [];

  function make(options: Partial<ReleaseListenerOptions> = {}): ReleaseListener {
    const listener = new ReleaseListener({ open: server.open, target, timeoutMs: 1000, ...options });
    made.push(listener);
    return listener;
  }

  beforeEach(() => {
    vi.useFakeTimers();
    server = new FakeReleaseServer();
    target = new RecordingTarget();
  });

  afterEach(() => {
    for (const listener of made.splice(0)) listener.close();
    vi.useRealTimers();
  });

  describe('listening', () => {
    it('opens nothing until asked, then one connection however many ask at once', async () => {
      const listener = make();
      await flush();
      expect(server.connections).toHaveLength(0);
      const asks = [listener.listen(), listener.listen(), observe(listener.listen())];
      expect(listener.hearing()).toBe(false);
      expect(server.connections).toHaveLength(1);
      server.last.listens();
      expect(await asks[0]).toBe(true);
      expect(await asks[1]).toBe(true);
      expect(listener.listening).toBe(true);
      expect(listener.hearing()).toBe(true);
      expect(server.connections).toHaveLength(1);
    });

    it('wakes every waiter once it starts listening: releases announced before went unheard', async () => {
      const listener = make();
      const listening = listener.listen();
      expect(target.wakeAlls).toBe(0);
      server.last.listens();
      await listening;
      expect(target.wakeAlls).toBe(1);
    });

    it('hearing() starts listening in the background and says false until it listens', async () => {
      const listener = make();
      expect(listener.hearing()).toBe(false);
      expect(server.connections).toHaveLength(1);
      expect(listener.hearing()).toBe(false);
      expect(server.connections).toHaveLength(1);
      server.last.listens();
      await flush();
      expect(listener.hearing()).toBe(true);
    });
  });

  describe('wake-up routing', () => {
    it("wakes the released key's waiters, and every waiter for a release that names no key", async () => {
      server.autoListen = true;
      const listener = make();
      await listener.listen();
      const before = target.wakeAlls;
      server.last.events.released('a');
      server.last.events.released('b');
      expect(target.woken).toStrictEqual(['a', 'b']);
      server.last.events.released(undefined);
      expect(target.wakeAlls).toBe(before + 1);
    });

    it('ignores messages of a connection it has dropped', async () => {
      server.autoListen = true;
      const listener = make();
      await listener.listen();
      const old = server.last;
      old.events.lost();
      const wakeAlls = target.wakeAlls;
      old.events.released('late');
      old.events.released(undefined);
      old.events.lost();
      expect(target.woken).toStrictEqual([]);
      expect(target.wakeAlls).toBe(wakeAlls);
      expect(old.closed).toBe(1);
    });
  });

  describe('losing the connection', () => {
    it('stops listening, closes the connection, wakes every waiter and listens again when asked', async () => {
      server.autoListen = true;
      const listener = make();
      await listener.listen();
      const first = server.last;
      const wakeAlls = target.wakeAlls;
      first.events.lost();
      expect(listener.listening).toBe(false);
      expect(first.closed).toBe(1);
      // Heads sleeping until woken must switch to bounded waits now.
      expect(target.wakeAlls).toBe(wakeAlls + 1);
      expect(await listener.listen()).toBe(true);
      expect(server.connections).toHaveLength(2);
      expect(target.wakeAlls).toBe(wakeAlls + 2);
    });

    it('counts a connection lost before it listened as a failed attempt', async () => {
      const listener = make();
      const listening = listener.listen();
      server.last.events.lost();
      server.last.listens();
      expect(await listening).toBe(false);
      expect(listener.listening).toBe(false);
      expect(listener.failures).toBe(1);
      expect(target.wakeAlls).toBe(0);
    });
  });

  describe('failures and backoff', () => {
    it.each(['throw', 'reject'] as const)(
      'after open fails (%s), waits 50 ms doubling up to retryMaxMs between attempts',
      async (refuse) => {
        server.refuse = refuse;
        const listener = make({ retryMinMs: 50, retryMaxMs: 400 });
        // Ask every 10 ms for 2 s: attempts may start only as the backoff allows.
        for (let at = 0; at < 2000; at += 10) {
          await listener.listen();
          await advance(10);
        }
        const gaps = server.openedAt.slice(1).map((at, i) => at - (server.openedAt[i] as number));
        expect(gaps.slice(0, 4)).toStrictEqual([50, 100, 200, 400]);
        expect(gaps.slice(4).every((gap) => gap === 400)).toBe(true);
        expect(listener.failures).toBe(server.openedAt.length);
        for (const connection of server.connections) expect(connection.closed).toBe(1);
      },
    );

    it('closes a connection not listening within timeoutMs and counts the failure', async () => {
      const listener = make({ timeoutMs: 300 });
      const listening = observe(listener.listen());
      await advance(299);
      expect(listening.state).toBe('pending');
      expect(server.last.closed).toBe(0);
      await advance(1);
      expect(listening.value).toBe(false);
      expect(server.last.closed).toBe(1);
      expect(listener.failures).toBe(1);
      // A connection that gets ready after its deadline changes nothing.
      server.last.listens();
      await flush();
      expect(listener.listening).toBe(false);
    });

    it('forgets past failures once it listens: the next loss retries at once', async () => {
      server.refuse = 'reject';
      const listener = make();
      await listener.listen();
      await advance(50);
      await listener.listen();
      expect(listener.failures).toBe(2);
      server.refuse = undefined;
      server.autoListen = true;
      await advance(100);
      expect(await listener.listen()).toBe(true);
      expect(listener.failures).toBe(0);
      server.last.events.lost();
      expect(await listener.listen()).toBe(true);
    });
  });

  describe('close', () => {
    it('ends the connection, and listens no more', async () => {
      server.autoListen = true;
      const listener = make();
      await listener.listen();
      listener.close();
      listener.close();
      expect(server.last.closed).toBe(1);
      expect(listener.listening).toBe(false);
      expect(await listener.listen()).toBe(false);
      expect(listener.hearing()).toBe(false);
      expect(server.connections).toHaveLength(1);
    });

    it('ends a connection still getting ready, whose attempt then resolves false', async () => {
      const listener = make();
      const listening = listener.listen();
      listener.close();
      expect(server.last.closed).toBe(1);
      server.last.listens();
      expect(await listening).toBe(false);
      expect(listener.listening).toBe(false);
      expect(target.wakeAlls).toBe(0);
    });
  });

  describe('with LockWaiters and wakeUpRetry: the bounded fallback', () => {
    it('polls every fallbackMs while not listening, sleeps until woken while listening, and polls again once the connection is lost', async () => {
      const protocol = new FakeLockProtocol();
      protocol.holdElsewhere('k');
      const waiters = new LockWaiters({
        name: 'FakeBackend',
        protocol,
        retry: wakeUpRetry({ hearing: () => listener.hearing(), fallbackMs: 100 }),
      });
      // The policy reads the listener only once the head waits, after it exists.
      const listener = make({ target: waiters });
      const acquired = observe(waiters.acquire('k', { leaseMs: 1000, waitMs: 60_000 }));
      server.refuse = 'reject';
      await advance(1000);
      // Not listening (every attempt to listen fails): the head looks again every 100 ms.
      expect(protocol.attemptsOn('k')).toBe(11);

      // Listening: the head sleeps until a release is heard.
      server.refuse = undefined;
      server.autoListen = true;
      await advance(1500);
      expect(listener.listening).toBe(true);
      const whileListening = protocol.attemptsOn('k');
      await advance(5000);
      expect(protocol.attemptsOn('k')).toBe(whileListening);

      // Lost: the sleeping head is woken and falls back to looking every 100 ms.
      server.autoListen = false;
      server.last.events.lost();
      await advance(500);
      expect(protocol.attemptsOn('k') - whileListening).toBe(6);

      // A release heard wakes the head at once.
      server.last.listens();
      await flush();
      expect(listener.listening).toBe(true);
      await advance(5000);
      const beforeRelease = protocol.attemptsOn('k');
      protocol.free('k');
      server.last.events.released('k');
      await flush();
      expect(protocol.attemptsOn('k')).toBe(beforeRelease + 1);
      expect(acquired.state).toBe('resolved');
      expect(acquired.value?.key).toBe('k');
      await waiters.close();
    });
  });
});
