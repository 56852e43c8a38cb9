// The lock half of a DISTRIBUTED backend on the backend kit: the server-side steps live in a
// LockProtocol; LockWaiters does the waiting (FIFO per key in this process, one attempt at a time,
// backoff between attempts, exact long waits, prompt aborts, give-back of late wins and of every
// lease held at close); a CallRunner puts each request under one deadline and maps driver errors.
// The data half (get, set with a lease, …) runs through the same runner; see map-backend.ts.
import { randomUUID } from 'node:crypto';
import {
  backoffRetry,
  BackendClosedError,
  BackendError,
  BackendTimeoutError,
  BackendUnavailableError,
  CallRunner,
  checkAcquireOptions,
  checkDuration,
  checkLease,
  checkStoredKey,
  LockWaiters,
  type AcquireLockOptions,
  type AttemptOutcome,
  type ErrorMapper,
  type Lease,
  type LockProtocol,
} from '@latchkey/core';

/**
 * Stands in for the shared server — a Redis, an SQL table — with one row per locked key. Each
 * method is ONE atomic request on the real thing (a Lua script, `INSERT … ON CONFLICT`, an
 * `UPDATE … WHERE token = $1`), which is what makes the lock safe across processes.
 */
export class FakeLockServer {
  readonly #rows = new Map<string, { token: string; lapsesAt: number }>();
  #fence = 0n;
  /** While true, every request fails as a dropped connection does. */
  down = false;

  /** Takes the key for `token` if it is free or its holder lapsed; else says when it lapses. */
  async lock(key: string, token: string, leaseMs: number): Promise<{ fence: bigint } | { lapsesInMs: number }> {
    await this.#roundTrip();
    const now = Date.now();
    const row = this.#rows.get(key);
    if (row !== undefined && row.lapsesAt > now) return { lapsesInMs: row.lapsesAt - now };
    this.#rows.set(key, { token, lapsesAt: leaseMs === 0 ? Infinity : now + leaseMs });
    this.#fence += 1n;
    return { fence: this.#fence };
  }

  /** Compare-and-delete: frees the key only while `token` holds it. */
  async unlock(key: string, token: string): Promise<boolean> {
    await this.#roundTrip();
    const row = this.#rows.get(key);
    if (row === undefined || row.token !== token || row.lapsesAt <= Date.now()) return false;
    this.#rows.delete(key);
    return true;
  }

  /** Compare-and-set: renews the lease only while `token` holds it. */
  async renew(key: string, token: string, leaseMs: number): Promise<boolean> {
    await this.#roundTrip();
    const row = this.#rows.get(key);
    if (row === undefined || row.token !== token || row.lapsesAt <= Date.now()) return false;
    row.lapsesAt = leaseMs === 0 ? Infinity : Date.now() + leaseMs;
    return true;
  }

  async #roundTrip(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    if (this.down) throw Object.assign(new Error('connection reset by peer'), { code: 'ECONNRESET' });
  }
}

/** Driver errors → latchkey errors, the driver's error kept as `cause` (the runner passes latchkey errors through). */
const toLatchkeyError: ErrorMapper = (error, call) => {
  const message = `${call.backend}: ${call.what} failed: ${error instanceof Error ? error.message : String(error)}`;
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET') return new BackendUnavailableError(message, { cause: error });
  if (code === 'ETIMEDOUT') return new BackendTimeoutError(message, call.timeoutMs, { cause: error });
  return new BackendError(message, { cause: error });
};

/** `acquireLock`, `releaseLock`, `extendLock` and `close` of a backend whose locks live on a shared server. */
export class DistributedLocks {
  readonly #server: FakeLockServer;
  readonly #calls: CallRunner;
  readonly #locks: LockWaiters;
  #closing: Promise<void> | undefined;

  constructor(server: FakeLockServer, options: { readonly operationTimeoutMs?: number } = {}) {
    this.#server = server;
    this.#calls = new CallRunner({ name: 'FakeServerBackend', timeoutMs: options.operationTimeoutMs ?? 2_000, mapError: toLatchkeyError });
    // This server cannot announce releases to other processes, so the head waiter polls:
    // 5 ms, 10 ms, … up to 200 ms, never past the holder's lapse when the server reported it.
    this.#locks = new LockWaiters({ name: 'FakeServerBackend', protocol: this.#protocol(), retry: backoffRetry({ minMs: 5, maxMs: 200 }) });
  }

  acquireLock(key: string, options: AcquireLockOptions): Promise<Lease | undefined> {
    return this.#guarded('acquireLock', () => {
      checkStoredKey(key);
      checkAcquireOptions(options);
      return this.#locks.acquire(key, options);
    });
  }

  releaseLock(lease: Lease): Promise<boolean> {
    return this.#guarded('releaseLock', () => {
      checkLease(lease);
      return this.#locks.release(lease);
    });
  }

  extendLock(lease: Lease, leaseMs: number): Promise<boolean> {
    return this.#guarded('extendLock', () => {
      checkLease(lease);
      checkDuration('leaseMs', leaseMs);
      return this.#locks.extend(lease, leaseMs);
    });
  }

  /**
   * In this order: reject every waiter with BackendClosedError and give back every lease this
   * process holds (while requests can still be sent), then refuse and fail every call left in
   * the runner, then close the client — only if the backend built it. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#locks.close();
      this.#calls.close();
      // Last, the client, if this backend built it (one given in the options stays open).
    })();
    return this.#closing;
  }

  /** Public methods refuse as soon as close() was called, though the runner closes later. */
  #guarded<T>(what: string, work: () => Promise<T>): Promise<T> {
    if (this.#closing !== undefined) return Promise.reject(new BackendClosedError(`FakeServerBackend is closed: ${what} was not sent.`));
    try {
      return work();
    } catch (error) {
      return Promise.reject(error); // a guard's ValidationError / InvalidKeyError, before any I/O
    }
  }

  #protocol(): LockProtocol {
    const server = this.#server;
    return {
      attempt: (key, leaseMs) =>
        this.#calls.run<AttemptOutcome>(
          'acquireLock',
          async () => {
            const token = randomUUID();
            // Taken before the request leaves, so the core never thinks the lease longer-lived than it is.
            const acquiredAt = performance.now();
            const answer = await server.lock(key, token, leaseMs);
            if ('lapsesInMs' in answer) return { retryInMs: answer.lapsesInMs };
            return { lease: { key, token, fencingToken: answer.fence, acquiredAt } };
          },
          // Won after the deadline had already failed the attempt: nobody will use it.
          {
            onLate: (late) => {
              if (late.lease !== undefined) this.#locks.giveBack(late.lease);
            },
          },
        ),
      // evenIfClosed: close() gives leases back through here, and late give-backs may come after it.
      release: (lease) => this.#calls.run('releaseLock', () => server.unlock(lease.key, lease.token), { evenIfClosed: true }),
      extend: (lease, leaseMs) => this.#calls.run('extendLock', () => server.renew(lease.key, lease.token, leaseMs)),
    };
  }
}
