import { describe, expect, it } from 'vitest';
import { KeyValueStore, ValidationError } from '../../src/index.js';
import { MapBackend, uniqueName } from '../support/map-backend.js';

/** Options values that are not an options object; `undefined` (no options) stays allowed. */
const notOptions: readonly (readonly [string, unknown])[] = [
  ['null', null],
  ['a number', 5],
  ['a string', 'ttlMs'],
  ['a boolean', true],
  ['an array', []],
  ['a function', () => undefined],
];

async function configured() {
  const backend = new MapBackend();
  const store = new KeyValueStore(uniqueName());
  await store.configure(backend, { lockSafetyWindowMs: 20 });
  backend.calls.length = 0;
  return { store, backend };
}

/** Asserts `call` rejects (or throws) a ValidationError naming the options, and reaches no backend. */
async function expectOptionsRejected(call: () => unknown, backend: MapBackend): Promise<void> {
  let error: unknown;
  try {
    await call();
  } catch (caught) {
    error = caught;
  }
  expect(error, 'the call should have failed').toBeInstanceOf(ValidationError);
  expect((error as ValidationError).message).toMatch(/options/);
  expect(backend.calls).toStrictEqual([]);
}

describe('options objects of the public methods', () => {
  it.each(notOptions)('configure rejects %s as options with ValidationError and stays configurable', async (_label, options) => {
    const store = new KeyValueStore(uniqueName());
    const backend = new MapBackend();
    await expectOptionsRejected(() => store.configure(backend, options as never), backend);
    expect(store.isConfigured).toBe(false);
    await store.configure(backend, undefined);
    expect(store.isConfigured).toBe(true);
  });

  it.each(notOptions)('set rejects %s as options with ValidationError', async (_label, options) => {
    const { store, backend } = await configured();
    await expectOptionsRejected(() => store.set('k', 1, options as never), backend);
    await store.set('k', 1, undefined);
    expect(await store.get('k')).toBe(1);
  });

  it.each(notOptions)('setMany rejects %s as options with ValidationError', async (_label, options) => {
    const { store, backend } = await configured();
    await expectOptionsRejected(() => store.setMany({ k: 1 }, options as never), backend);
    await store.setMany({ k: 1 }, undefined);
    expect(await store.get('k')).toBe(1);
  });

  it.each(notOptions)('delete rejects %s as options with ValidationError', async (_label, options) => {
    const { store, backend } = await configured();
    await expectOptionsRejected(() => store.delete('k', options as never), backend);
  });

  it.each(notOptions)('getLock throws ValidationError for %s as options', async (_label, options) => {
    const { store, backend } = await configured();
    await expectOptionsRejected(() => store.getLock('k', options as never), backend);
    expect(store.getLock('k', undefined).key).toBe('k');
  });

  it.each(notOptions)('withLock rejects %s as options with ValidationError without running fn', async (_label, options) => {
    const { store, backend } = await configured();
    let ran = false;
    await expectOptionsRejected(
      () =>
        store.withLock(
          'k',
          () => {
            ran = true;
          },
          options as never,
        ),
      backend,
    );
    expect(ran).toBe(false);
    expect(await store.withLock('k', () => 'done', undefined)).toBe('done');
  });

  it.each(notOptions)('getOrCreate rejects %s as options with ValidationError without running the creator', async (_label, options) => {
    const { store, backend } = await configured();
    let ran = false;
    await expectOptionsRejected(
      () =>
        store.getOrCreate(
          'k',
          () => {
            ran = true;
            return 1;
          },
          options as never,
        ),
      backend,
    );
    expect(ran).toBe(false);
    expect(await store.getOrCreate('k', () => 2, undefined)).toBe(2);
  });

  it.each(notOptions)('acquire rejects %s as options with ValidationError and takes no lock', async (_label, options) => {
    const { store, backend } = await configured();
    const lock = store.getLock('k');
    await expectOptionsRejected(() => lock.acquire(options as never), backend);
    expect(lock.active).toBe(false);
    await lock.acquire(undefined);
    expect(lock.active).toBe(true);
    await lock.release();
  });
});
