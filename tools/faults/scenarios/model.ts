/**
 * Model-based property test: random sequences of store operations (reads, writes, batch
 * calls, deletes, lock acquire/release and locked writes from several lock holders) run
 * against the backend under test and against the memory backend, the reference model; every
 * step must give the same observable result — the same values, the same error class, the
 * same `NotFoundError` target.
 *
 * @module
 */
import { KeyValueStore, LatchkeyError, NotFoundError, type KeyValueStoreLock } from '@latchkey/core';
import { MemoryBackend } from '@latchkey/memory';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackend } from '../backends.js';
import { record } from '../stats.js';
import type { SuiteContext } from '../context.js';

/** One side of the comparison: a store and its lock holders' current locks. */
interface Side {
  readonly store: KeyValueStore;
  readonly locks: (KeyValueStoreLock | undefined)[];
}

interface Real {
  readonly reference: Side;
  readonly subject: Side;
  /** Prefix that isolates this run's keys on the shared subject store. */
  readonly prefix: string;
  /** Steps executed so far (over all runs). */
  readonly executed: { count: number };
}

/** Which lock holders have a lock object (the only state commands need to check preconditions). */
interface Model {
  readonly holders: boolean[];
}

const HOLDERS = 3;
const KEYS = ['a', 'b', 'c', 'k k', 'ä'] as const;
const keyArb = fc.constantFrom(...KEYS);
const valueArb = fc.oneof(
  fc.integer(),
  fc.string({ maxLength: 6 }),
  fc.constant(null),
  fc.constant(undefined),
  fc.boolean(),
  fc.constant(0),
  fc.constant(''),
  fc.array(fc.integer(), { maxLength: 3 }),
);
const holderArb = fc.integer({ min: 0, max: HOLDERS - 1 });

/** What a step showed: a value, or an error's class, code and target. */
type Observation = { ok: unknown } | { error: string; code: string | undefined; target?: unknown };

async function observe(work: () => Promise<unknown>): Promise<Observation> {
  try {
    return { ok: await work() };
  } catch (error) {
    if (error instanceof NotFoundError) return { error: error.name, code: error.code, target: error.target };
    if (error instanceof LatchkeyError) return { error: error.name, code: error.code };
    throw error;
  }
}

/** Strips the run prefix from observed keys so both sides compare equal. */
function unprefix(observation: Observation, prefix: string): Observation {
  if (!('target' in observation)) return observation;
  const strip = (key: unknown): unknown => (typeof key === 'string' && key.startsWith(prefix) ? key.slice(prefix.length) : key);
  const target = Array.isArray(observation.target) ? observation.target.map(strip) : strip(observation.target);
  return { ...observation, target };
}

abstract class Step implements fc.AsyncCommand<Model, Real> {
  abstract readonly label: string;
  check(_model: Readonly<Model>): boolean {
    return true;
  }
  abstract apply(side: Side, key: (k: string) => string): Promise<unknown>;
  update(_model: Model): void {}

  async run(model: Model, real: Real): Promise<void> {
    const subjectKey = (k: string): string => `${real.prefix}${k}`;
    const referenceKey = subjectKey;
    const expected = unprefix(await observe(() => this.apply(real.reference, referenceKey)), real.prefix);
    const actual = unprefix(await observe(() => this.apply(real.subject, subjectKey)), real.prefix);
    expect(actual, this.label).toEqual(expected);
    this.update(model);
    real.executed.count += 1;
  }

  toString(): string {
    return this.label;
  }
}

class Get extends Step {
  constructor(readonly key: string) {
    super();
  }
  get label() {
    return `get(${this.key})`;
  }
  apply(side: Side, key: (k: string) => string) {
    return side.store.get(key(this.key));
  }
}

class GetMany extends Step {
  constructor(readonly keys: string[]) {
    super();
  }
  get label() {
    return `getMany(${this.keys.join(',')})`;
  }
  apply(side: Side, key: (k: string) => string) {
    return side.store.getMany(this.keys.map(key));
  }
}

class Put extends Step {
  constructor(
    readonly key: string,
    readonly value: unknown,
  ) {
    super();
  }
  get label() {
    return `set(${this.key}, ${String(this.value)})`;
  }
  apply(side: Side, key: (k: string) => string) {
    return side.store.set(key(this.key), this.value);
  }
}

class SetMany extends Step {
  constructor(readonly entries: [string, unknown][]) {
    super();
  }
  get label() {
    return `setMany(${this.entries.map(([k, v]) => `${k}=${String(v)}`).join(',')})`;
  }
  apply(side: Side, key: (k: string) => string) {
    return side.store.setMany(this.entries.map(([k, v]) => [key(k), v] as const));
  }
}

class Delete extends Step {
  constructor(readonly key: string) {
    super();
  }
  get label() {
    return `delete(${this.key})`;
  }
  apply(side: Side, key: (k: string) => string) {
    return side.store.delete(key(this.key));
  }
}

class DeleteMany extends Step {
  constructor(readonly keys: string[]) {
    super();
  }
  get label() {
    return `deleteMany(${this.keys.join(',')})`;
  }
  apply(side: Side, key: (k: string) => string) {
    return side.store.deleteMany(this.keys.map(key));
  }
}

class TryLock extends Step {
  constructor(
    readonly holder: number,
    readonly key: string,
  ) {
    super();
  }
  get label() {
    return `holder${this.holder}.tryAcquire(${this.key})`;
  }
  async apply(side: Side, key: (k: string) => string) {
    const lock = side.store.getLock(key(this.key));
    const won = await lock.tryAcquire();
    // An earlier lock of this holder stays as it is (held or not): only its reference is dropped.
    side.locks[this.holder] = lock;
    return won;
  }
  override update(model: Model) {
    model.holders[this.holder] = true;
  }
}

class Release extends Step {
  constructor(readonly holder: number) {
    super();
  }
  get label() {
    return `holder${this.holder}.release()`;
  }
  override check(model: Readonly<Model>) {
    return model.holders[this.holder] === true;
  }
  async apply(side: Side) {
    const lock = side.locks[this.holder];
    await lock?.release();
    return lock?.active;
  }
}

class LockedSet extends Step {
  constructor(
    readonly holder: number,
    readonly key: string,
    readonly value: unknown,
  ) {
    super();
  }
  get label() {
    return `set(${this.key}, ${String(this.value)}, { lock: holder${this.holder} })`;
  }
  override check(model: Readonly<Model>) {
    return model.holders[this.holder] === true;
  }
  apply(side: Side, key: (k: string) => string) {
    return side.store.set(key(this.key), this.value, { lock: side.locks[this.holder] as KeyValueStoreLock });
  }
}

class LockedDelete extends Step {
  constructor(
    readonly holder: number,
    readonly key: string,
  ) {
    super();
  }
  get label() {
    return `delete(${this.key}, { lock: holder${this.holder} })`;
  }
  override check(model: Readonly<Model>) {
    return model.holders[this.holder] === true;
  }
  apply(side: Side, key: (k: string) => string) {
    return side.store.delete(key(this.key), { lock: side.locks[this.holder] as KeyValueStoreLock });
  }
}

const steps: fc.Arbitrary<fc.AsyncCommand<Model, Real>>[] = [
  keyArb.map((k) => new Get(k)),
  fc.array(keyArb, { maxLength: 4 }).map((ks) => new GetMany(ks)),
  fc.tuple(keyArb, valueArb).map(([k, v]) => new Put(k, v)),
  fc.array(fc.tuple(keyArb, valueArb), { maxLength: 4 }).map((entries) => new SetMany(entries)),
  keyArb.map((k) => new Delete(k)),
  fc.array(keyArb, { maxLength: 4 }).map((ks) => new DeleteMany(ks)),
  fc.tuple(holderArb, keyArb).map(([h, k]) => new TryLock(h, k)),
  holderArb.map((h) => new Release(h)),
  fc.tuple(holderArb, keyArb, valueArb).map(([h, k, v]) => new LockedSet(h, k, v)),
  fc.tuple(holderArb, keyArb).map(([h, k]) => new LockedDelete(h, k)),
];

/** Registers the model-based comparison with the memory backend. */
export function defineModelTests(context: SuiteContext): void {
  const { profile, kind } = context;

  describe('model', () => {
    let subject: KeyValueStore | undefined;

    beforeAll(async () => {
      subject = new KeyValueStore(`${kind}-model-subject`);
      await subject.configure(await createBackend(context.target()), { lockTimeoutMs: 30_000, lockSafetyWindowMs: 50 });
    });

    afterAll(async () => {
      await subject?.close();
    });

    it(`behaves like the memory backend over ${profile.modelRuns} random operation sequences`, { timeout: 240_000 }, async () => {
      let run = 0;
      const executed = { count: 0 };
      const started = performance.now();
      await fc.assert(
        fc.asyncProperty(fc.commands(steps, { maxCommands: 40, size: '+1' }), async (sequence) => {
          run += 1;
          const reference = new KeyValueStore(`${kind}-model-reference-${run}`);
          await reference.configure(new MemoryBackend(), { lockTimeoutMs: 30_000, lockSafetyWindowMs: 50 });
          const real: Real = {
            reference: { store: reference, locks: [] },
            subject: { store: subject as KeyValueStore, locks: [] },
            prefix: `m${run}/`,
            executed,
          };
          try {
            await fc.asyncModelRun(() => ({ model: { holders: Array.from({ length: HOLDERS }, () => false) }, real }), sequence);
          } finally {
            for (const lock of [...real.subject.locks, ...real.reference.locks]) await lock?.release();
            await reference.close();
          }
        }),
        { numRuns: profile.modelRuns },
      );
      record(kind, 'model', { runs: profile.modelRuns, steps: executed.count, elapsedMs: Math.round(performance.now() - started) });
      expect(run).toBeGreaterThanOrEqual(profile.modelRuns);
    });
  });
}
