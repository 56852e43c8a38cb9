import { describe, expect, it } from 'vitest';
import { KeyValueStore, lockAcquireChannel, storeOperationChannel, type StoreOperationMessage } from '../../src/index.js';
import { MapBackend, uniqueName } from '../support/map-backend.js';

/**
 * Runs `fn` with this test's own 'uncaughtException' handler in place of the test runner's
 * (which would fail the run), and resolves with the errors it caught once `fn` settled and
 * the next ticks ran.
 */
async function catchingUncaught(fn: () => Promise<void>): Promise<unknown[]> {
  const caught: unknown[] = [];
  const runners = process.listeners('uncaughtException');
  process.removeAllListeners('uncaughtException');
  const onUncaught = (error: unknown) => caught.push(error);
  process.on('uncaughtException', onUncaught);
  try {
    await fn();
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('uncaughtException', onUncaught);
    for (const listener of runners) process.on('uncaughtException', listener);
  }
  return caught;
}

describe('a subscriber that throws', () => {
  it('does not break the store call: Node reports its error as an uncaught exception on the next tick', async () => {
    const store = new KeyValueStore(uniqueName('throwing-subscriber'));
    await store.configure(new MapBackend());
    const thrown = new Error('subscriber bug');
    const later: string[] = [];
    const handlers = {
      start: () => {
        throw thrown;
      },
      asyncEnd: (message: StoreOperationMessage) => {
        later.push(`${message.operation}:${message.outcome}`);
        throw thrown;
      },
    };
    storeOperationChannel.subscribe(handlers);
    const lockHandlers = {
      start: () => {
        throw thrown;
      },
    };
    lockAcquireChannel.subscribe(lockHandlers);
    let value: unknown;
    let caught: unknown[];
    try {
      caught = await catchingUncaught(async () => {
        await store.set('k', 'v');
        value = await store.get('k');
        await store.withLock('k', () => undefined);
      });
    } finally {
      storeOperationChannel.unsubscribe(handlers);
      lockAcquireChannel.unsubscribe(lockHandlers);
    }
    expect(value).toBe('v');
    // A throwing start subscriber does not stop the later events either.
    expect(later).toStrictEqual(['set:written', 'get:hit']);
    expect(caught).toStrictEqual([thrown, thrown, thrown, thrown, thrown]);
  });
});
