/**
 * The commands of a comparison worker: one contender library per process, driven through
 * the same steps as the fault suite's workers.
 *
 * @module
 */
import type { CloseReport } from '../worker/commands.js';
import { epochNow, outcomeOf, type Outcome } from '../worker/outcome.js';
import { unhandledRejections } from '../worker/serve.js';
import { connectContender, type Contender, type ContenderName, type HeldLock, type WriteVerdict } from './contenders.js';

/** What a contention run measured in one process. */
export interface CompareIncrementReport {
  readonly successes: number;
  readonly failures: Record<Outcome, number>;
}

/** The commands of a comparison worker. */
export interface CompareCommands {
  open(args: { contender: ContenderName; url: string; namespace: string }): Promise<{ hasLocks: boolean }>;
  /** Read-increment-write loops on one key: under the lock, or (keyv) without one. */
  increment(args: { key: string; perWorker: readonly number[]; waitMs: number }): Promise<CompareIncrementReport>;
  /** Takes the lock of each key and writes `value` under it; keeps the locks. */
  hold(args: {
    keys: readonly string[];
    value: string;
    leaseMs: number;
    waitMs: number;
    autoExtend?: boolean;
  }): Promise<{ acquiredAt: number[] }>;
  /** The holder's own validity check of each held lock. */
  check(args: { keys: readonly string[] }): Promise<boolean[]>;
  /** The normal locked write of each held lock. */
  write(args: { keys: readonly string[]; value: string }): Promise<(WriteVerdict | Outcome)[]>;
  /** The write that follows a passed check (see {@link HeldLock.writeAfterCheck}). */
  writeAfterCheck(args: { keys: readonly string[]; value: string }): Promise<(WriteVerdict | Outcome)[]>;
  /** When the library reported each held lock lost (autoExtend), epoch ms. */
  lost(args: { keys: readonly string[] }): Promise<(number | null)[]>;
  release(args: { keys: readonly string[] }): Promise<Outcome[]>;
  read(args: { keys: readonly string[] }): Promise<(string | null)[]>;
  close(): Promise<CloseReport>;
}

/** Creates the comparison commands of one worker process. */
export function createCompareCommands(): CompareCommands {
  let contender: Contender | undefined;
  const held = new Map<string, HeldLock>();
  const current = (): Contender => {
    if (contender === undefined) throw new Error('compare worker: open() first');
    return contender;
  };
  const heldLock = (key: string): HeldLock => {
    const lock = held.get(key);
    if (lock === undefined) throw new Error(`compare worker: ${key} is not held`);
    return lock;
  };
  const each = async <T>(keys: readonly string[], work: (lock: HeldLock) => Promise<T>): Promise<(T | Outcome)[]> => {
    const results: (T | Outcome)[] = [];
    for (const key of keys) {
      try {
        results.push(await work(heldLock(key)));
      } catch (error) {
        results.push(outcomeOf(error));
      }
    }
    return results;
  };

  return {
    async open({ contender: name, url, namespace }) {
      contender = await connectContender(name, url, namespace);
      return { hasLocks: contender.hasLocks };
    },

    async increment({ key, perWorker, waitMs }) {
      const library = current();
      const report = { successes: 0, failures: {} as Record<Outcome, number> };
      const fail = (error: unknown): void => {
        const outcome = outcomeOf(error);
        report.failures[outcome] = (report.failures[outcome] ?? 0) + 1;
      };
      const worker = async (quota: number): Promise<void> => {
        for (let done = 0; done < quota;) {
          if (!library.hasLocks) {
            const value = Number((await library.read(key)) ?? '0');
            await library.writeUnlocked(key, String(value + 1));
            report.successes += 1;
            done += 1;
            continue;
          }
          let lock: HeldLock;
          try {
            lock = await library.acquire(key, { leaseMs: 5000, waitMs });
          } catch (error) {
            fail(error);
            continue;
          }
          try {
            const value = Number((await library.read(key)) ?? '0');
            if ((await lock.write(String(value + 1))) === 'accepted') {
              report.successes += 1;
              done += 1;
            } else fail(new Error('write refused'));
          } catch (error) {
            fail(error);
          } finally {
            await lock.release().catch(fail);
          }
        }
      };
      await Promise.all(perWorker.map((quota) => worker(quota)));
      return report;
    },

    async hold({ keys, value, leaseMs, waitMs, autoExtend }) {
      const library = current();
      const acquiredAt: number[] = [];
      for (const key of keys) {
        const lock = await library.acquire(key, { leaseMs, waitMs, ...(autoExtend === undefined ? {} : { autoExtend }) });
        acquiredAt.push(epochNow());
        held.set(key, lock);
        await lock.write(value);
      }
      return { acquiredAt };
    },

    async check({ keys }) {
      return keys.map((key) => heldLock(key).stillValid());
    },

    write({ keys, value }) {
      return each(keys, (lock) => lock.write(value));
    },

    writeAfterCheck({ keys, value }) {
      return each(keys, (lock) => lock.writeAfterCheck(value));
    },

    async lost({ keys }) {
      return keys.map((key) => heldLock(key).lostAt() ?? null);
    },

    async release({ keys }) {
      const outcomes = await each(keys, async (lock) => {
        await lock.release();
        return 'ok';
      });
      for (const key of keys) held.delete(key);
      return outcomes;
    },

    async read({ keys }) {
      const library = current();
      return Promise.all(keys.map(async (key) => (await library.read(key)) ?? null));
    },

    async close() {
      held.clear();
      await contender?.close();
      contender = undefined;
      return { unhandledRejections: unhandledRejections(), resources: [] };
    },
  };
}
