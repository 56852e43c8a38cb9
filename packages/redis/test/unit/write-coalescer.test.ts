import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { RedisClient } from '../../src/internal/connection-gate.js';
import { WriteCoalescer } from '../../src/internal/write-coalescer.js';

/** A stream that records each write it is asked to perform (one entry per `_write`/`_writev`). */
function recordingStream(): { stream: Writable; writes: string[][] } {
  const writes: string[][] = [];
  const stream = new Writable({
    decodeStrings: false,
    write(chunk: unknown, _encoding, done) {
      writes.push([String(chunk)]);
      done();
    },
    writev(chunks, done) {
      writes.push(chunks.map(({ chunk }) => String(chunk)));
      done();
    },
  });
  return { stream, writes };
}

function connection(status: string, stream: Writable | undefined): RedisClient {
  return { status, stream } as unknown as RedisClient;
}

function cluster(nodes: readonly RedisClient[]): RedisClient {
  return { isCluster: true, nodes: () => [...nodes] } as unknown as RedisClient;
}

const nextTick = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve));

describe('WriteCoalescer', () => {
  it('writes the first command of a tick at once and holds the rest of the tick for one write on the next tick', async () => {
    const { stream, writes } = recordingStream();
    const coalescer = new WriteCoalescer(connection('ready', stream));
    // From here on inside a microtask, as calls are: the uncork then runs after the microtasks.
    await nextTick();
    coalescer.hold();
    stream.write('a');
    expect(writes).toEqual([['a']]);
    coalescer.hold();
    stream.write('b');
    await Promise.resolve();
    coalescer.hold();
    stream.write('c');
    expect(writes).toEqual([['a']]);
    await nextTick();
    expect(writes).toEqual([['a'], ['b', 'c']]);
    expect(stream.writableCorked).toBe(0);
  });

  it('starts over in a later tick: its first command is written at once again, the rest corked once', async () => {
    const { stream, writes } = recordingStream();
    const coalescer = new WriteCoalescer(connection('ready', stream));
    coalescer.hold();
    stream.write('a');
    coalescer.hold();
    stream.write('b');
    await nextTick();
    coalescer.hold();
    expect(stream.writableCorked).toBe(0);
    stream.write('c');
    coalescer.hold();
    coalescer.hold();
    expect(stream.writableCorked).toBe(1);
    stream.write('d');
    stream.write('e');
    await nextTick();
    expect(writes).toEqual([['a'], ['b'], ['c'], ['d', 'e']]);
    expect(stream.writableCorked).toBe(0);
  });

  it('leaves a connection that is not ready alone (its commands are not written now anyway)', async () => {
    const { stream, writes } = recordingStream();
    const coalescer = new WriteCoalescer(connection('connecting', stream));
    for (const text of ['a', 'b', 'c']) {
      coalescer.hold();
      expect(stream.writableCorked).toBe(0);
      stream.write(text);
    }
    expect(writes).toEqual([['a'], ['b'], ['c']]);
    await nextTick();
    const socketless = new WriteCoalescer(connection('ready', undefined));
    expect(() => [socketless.hold(), socketless.hold()]).not.toThrow();
  });

  it('follows a replaced socket and uncorks one that was destroyed meanwhile without throwing', async () => {
    const first = recordingStream();
    const client = { status: 'ready', stream: first.stream };
    const coalescer = new WriteCoalescer(client as unknown as RedisClient);
    coalescer.hold();
    coalescer.hold();
    first.stream.write('lost');
    first.stream.destroy();
    await nextTick();
    expect(first.writes).toEqual([]);
    const second = recordingStream();
    client.stream = second.stream;
    coalescer.hold();
    second.stream.write('x');
    coalescer.hold();
    second.stream.write('y');
    second.stream.write('z');
    await nextTick();
    expect(second.writes).toEqual([['x'], ['y', 'z']]);
  });

  it('keeps the corks of others: a socket corked by its owner stays corked after the tick', async () => {
    const { stream, writes } = recordingStream();
    stream.cork();
    const coalescer = new WriteCoalescer(connection('ready', stream));
    coalescer.hold();
    coalescer.hold();
    expect(stream.writableCorked).toBe(2);
    stream.write('a');
    await nextTick();
    expect(stream.writableCorked).toBe(1);
    expect(writes).toEqual([]);
    stream.uncork();
    expect(writes).toEqual([['a']]);
  });

  it('corks each ready node of a Cluster and only those, uncorking all of them on the next tick', async () => {
    const a = recordingStream();
    const b = recordingStream();
    const down = recordingStream();
    const coalescer = new WriteCoalescer(
      cluster([connection('ready', a.stream), connection('ready', b.stream), connection('reconnecting', down.stream)]),
    );
    coalescer.hold();
    a.stream.write('0');
    coalescer.hold();
    for (const stream of [a.stream, b.stream, down.stream]) {
      stream.write('1');
      stream.write('2');
    }
    expect(down.writes).toEqual([['1'], ['2']]);
    expect(a.writes).toEqual([['0']]);
    expect(b.writes).toEqual([]);
    await nextTick();
    expect(a.writes).toEqual([['0'], ['1', '2']]);
    expect(b.writes).toEqual([['1', '2']]);
    expect([a, b, down].map(({ stream }) => stream.writableCorked)).toEqual([0, 0, 0]);
  });
});
