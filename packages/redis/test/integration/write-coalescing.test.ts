import type { Socket } from 'node:net';
import { BackendUnavailableError, LatchkeyError } from '@latchkey/core';
import { getFreePort } from '@latchkey/test-servers';
import { Cluster, Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisBackend } from '../../src/index.js';
import { availableTargets, closeAll } from '../support/targets.js';

afterAll(closeAll);

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (value: Uint8Array | undefined): string | undefined => (value === undefined ? undefined : new TextDecoder().decode(value));

/** The sockets a client writes commands to: its own, or one per connected Cluster node. */
function socketsOf(client: Redis | Cluster): Socket[] {
  const connections: Redis[] = client instanceof Cluster ? client.nodes('all') : [client];
  return connections.flatMap((connection) => (connection.stream === undefined ? [] : [connection.stream as Socket]));
}

/** Keys enough to reach every master of the test Cluster (and so connect to each). */
const SPREAD = Array.from({ length: 64 }, (_, i) => `warm-${i}`);

/** Counts the system-call-level writes (`_write` or `_writev` calls) of each socket until `stop()`. */
function countWrites(sockets: readonly Socket[]): { writes(): number[]; stop(): void } {
  const counts = sockets.map(() => 0);
  const restores = sockets.map((socket, i) => {
    // Instance properties shadow net.Socket's prototype methods, which Writable looks up per write.
    const target = socket as unknown as Record<'_write' | '_writev', (...args: unknown[]) => unknown>;
    const originals = { _write: target._write, _writev: target._writev };
    for (const name of ['_write', '_writev'] as const) {
      const original = originals[name];
      target[name] = function (this: Socket, ...args: unknown[]) {
        counts[i] = (counts[i] ?? 0) + 1;
        return original.apply(this, args);
      };
    }
    return () => {
      delete (target as Partial<typeof target>)._write;
      delete (target as Partial<typeof target>)._writev;
    };
  });
  return { writes: () => [...counts], stop: () => restores.forEach((restore) => restore()) };
}

/** Every data call that sends a command, issued in one tick. */
function oneTickOfCalls(backend: RedisBackend, tag: string): Promise<unknown>[] {
  return [
    backend.set(`${tag}-a`, bytes('a')),
    backend.set(`${tag}-b`, bytes('b'), { expiresAt: Date.now() + 60_000 }),
    backend.get(`${tag}-c`),
    backend.getMany([`${tag}-d`, `${tag}-e`, `${tag}-f`]),
    backend.setMany([
      [`${tag}-g`, bytes('g')],
      [`${tag}-h`, bytes('h')],
    ]),
    backend.delete(`${tag}-i`),
  ];
}

describe.each(availableTargets('RedisBackend write coalescing'))('RedisBackend write coalescing on $name', (target) => {
  it('sends the data calls of one tick in two writes at most per connection (the first call at once, the rest together), and answers each', async () => {
    const backend = target.create();
    await backend.getMany(SPREAD); // connected to every node
    const sockets = socketsOf(backend.client);
    expect(sockets.length).toBe(target.name === 'cluster' ? (await target.masters()).length : 1);
    const counter = countWrites(sockets);
    let results: unknown[];
    try {
      // Twelve calls and more commands than that: without coalescing, some connection would take more than two writes.
      results = await Promise.all([...oneTickOfCalls(backend, 'k'), ...oneTickOfCalls(backend, 'l')]);
    } finally {
      counter.stop();
    }
    const answers = ['written', 'written', undefined, [undefined, undefined, undefined], undefined, 'missing'];
    expect(results).toEqual([...answers, ...answers]);
    const writes = counter.writes();
    for (const count of writes) expect(count).toBeLessThanOrEqual(2);
    // Only the connection of the tick's first command writes twice.
    expect(writes.reduce((sum, count) => sum + count, 0)).toBeLessThanOrEqual(sockets.length + 1);
    if (target.name === 'standalone') expect(writes).toEqual([2]);
    expect((await backend.getMany(['k-a', 'k-b', 'k-g', 'k-h'])).map(text)).toEqual(['a', 'b', 'g', 'h']);
  });

  it('writes again once the tick is over: calls of the next tick go out in their own write', async () => {
    const backend = target.create();
    await backend.getMany(SPREAD);
    const counter = countWrites(socketsOf(backend.client));
    try {
      await backend.set('first', bytes('1'));
      await backend.set('second', bytes('2'));
    } finally {
      counter.stop();
    }
    expect(counter.writes().reduce((sum, writes) => sum + writes, 0)).toBe(2);
    expect((await backend.getMany(['first', 'second'])).map(text)).toEqual(['1', '2']);
  });
});

describe.each(availableTargets('RedisBackend write coalescing, standalone').filter((t) => t.name === 'standalone'))(
  'RedisBackend write coalescing around connection loss on $name',
  (target) => {
    it('fails the calls of a tick whose socket is destroyed before the write, with typed errors and before the deadline', async () => {
      const timeoutMs = 5_000;
      const backend = target.create({ operationTimeoutMs: timeoutMs });
      await backend.get('warm');
      const socket = (backend.client as Redis).stream;
      const started = performance.now();
      const calls = oneTickOfCalls(backend, 'lost').map((call) =>
        call.then(
          () => undefined,
          (error: unknown) => error,
        ),
      );
      socket.destroy();
      const errors = await Promise.all(calls);
      // Settled by the connection loss, not by the deadline (which is far longer than a reconnect).
      expect(performance.now() - started).toBeLessThan(timeoutMs / 2);
      for (const error of errors) expect(error).toBeInstanceOf(LatchkeyError);
      // The client reconnects on a new socket, and coalescing works on it as well.
      await expect
        .poll(
          () =>
            backend.get('after').then(
              () => true,
              () => false,
            ),
          { timeout: timeoutMs },
        )
        .toBe(true);
      const fresh = (backend.client as Redis).stream as Socket;
      expect(fresh).not.toBe(socket);
      const counter = countWrites([fresh]);
      try {
        expect(await Promise.all(oneTickOfCalls(backend, 'again'))).toHaveLength(6);
      } finally {
        counter.stop();
      }
      expect(counter.writes()).toEqual([2]);
    });

    it("coalesces on a given client too, with the caller's own commands of the tick in the same write", async () => {
      const client = new Redis(target.connection.url as string);
      const backend = new RedisBackend({ client, keyPrefix: `given-${Date.now()}:` });
      try {
        await client.ping();
        const counter = countWrites([client.stream as Socket]);
        let replies: unknown[];
        try {
          replies = await Promise.all([backend.set('x', bytes('x')), backend.get('x'), client.ping(), client.echo('e')]);
        } finally {
          counter.stop();
        }
        expect(replies[0]).toBe('written');
        expect(text(replies[1] as Uint8Array)).toBe('x');
        expect(replies.slice(2)).toEqual(['PONG', 'e']);
        // The set at once; the get and the client's own commands after it in the same tick, together.
        expect(counter.writes()).toEqual([2]);
      } finally {
        await backend.close();
        client.disconnect();
      }
    });
  },
);

describe('RedisBackend write coalescing without a connection', () => {
  it('settles a tick of calls made while no server is reachable with BackendUnavailableError by the deadline', async () => {
    const timeoutMs = 300;
    const backend = new RedisBackend({ url: `redis://127.0.0.1:${await getFreePort()}`, operationTimeoutMs: timeoutMs });
    try {
      const started = performance.now();
      const errors = await Promise.all(
        oneTickOfCalls(backend, 'offline').map((call) =>
          call.then(
            () => undefined,
            (e: unknown) => e,
          ),
        ),
      );
      const elapsed = performance.now() - started;
      for (const error of errors) expect(error).toBeInstanceOf(BackendUnavailableError);
      // The deadline plus the same margin the fault tests allow on this shared machine.
      expect(elapsed).toBeLessThan(timeoutMs + 400);
    } finally {
      await backend.close();
    }
  });
});
