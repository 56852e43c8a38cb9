import { Header } from 'memjs';
import { describe, expect, it } from 'vitest';
import { ServerChannel } from '../../src/internal/channel.js';
import { ServerFailure } from '../../src/internal/errors.js';
import type { MemjsResponse, MemjsServer } from '../../src/internal/memjs-internals.js';
import { Opcode, requests, Status } from '../../src/internal/protocol.js';

/** A request frame as the fake server read it. */
interface Sent {
  readonly opcode: number;
  readonly opaque: number;
  readonly key: string;
}

/** The frames of one socket write, in order. */
function parseFrames(blob: Buffer): Sent[] {
  const frames: Sent[] = [];
  for (let offset = 0; offset < blob.length;) {
    const header = Header.fromBuffer(blob.subarray(offset));
    const keyStart = offset + 24 + header.extrasLength;
    frames.push({
      opcode: header.opcode,
      opaque: header.opaque,
      key: blob.subarray(keyStart, keyStart + header.keyLength).toString('latin1'),
    });
    offset += 24 + header.totalBodyLength;
  }
  return frames;
}

/** A connected memjs server stand-in: records writes and deadlines like memjs's `Server#write`. */
function fakeServer(): { server: MemjsServer; writes: Sent[][]; corked: () => number; answer: (sent: Sent, value?: string) => void } {
  const writes: Sent[][] = [];
  let corks = 0;
  const responseCallbacks: Record<number, (response: MemjsResponse) => void> = {};
  const errorCallbacks: Record<number, (error: unknown) => void> = {};
  const socket = {
    cork: () => (corks += 1),
    uncork: () => undefined,
    connecting: false,
    prependOnceListener: () => socket,
    once: () => socket,
  };
  const server = {
    host: '127.0.0.1',
    port: 11211,
    _socket: socket,
    connected: true,
    responseBuffer: Buffer.alloc(0),
    requestTimeouts: [] as number[],
    responseCallbacks,
    errorCallbacks,
    onResponse: (seq: number, fn: (response: MemjsResponse) => void) => (responseCallbacks[seq] = fn),
    onError: (seq: number, fn: (error: unknown) => void) => (errorCallbacks[seq] = fn),
    error(error: unknown) {
      for (const key of Object.keys(errorCallbacks)) errorCallbacks[Number(key)]?.(error);
    },
    write(blob: Buffer) {
      writes.push(parseFrames(blob));
      server.requestTimeouts.push(1_000_000);
    },
    close: () => undefined,
  };
  const answer = (sent: Sent, value = ''): void => {
    const callback = responseCallbacks[sent.opaque];
    if (callback === undefined) throw new Error(`no callback for opaque ${sent.opaque}`);
    callback({
      header: { opcode: sent.opcode, status: Status.ok, opaque: sent.opaque, cas: Buffer.alloc(8), totalBodyLength: value.length },
      key: Buffer.alloc(0),
      extras: Buffer.alloc(4),
      val: Buffer.from(value, 'latin1'),
    });
  };
  return { server: server as unknown as MemjsServer, writes, corked: () => corks, answer };
}

function channelOver(server: MemjsServer): ServerChannel {
  let seq = 0;
  return new ServerChannel(server, () => ++seq, 500);
}

const tick = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve));

describe('ServerChannel batching', () => {
  it("sends one tick's requests in one write, in order, with one shared read behind them", async () => {
    const { server, writes, answer } = fakeServer();
    const channel = channelOver(server);
    const first = channel.send([requests.get('a')], 'gen');
    const second = channel.send([requests.get('b'), requests.delete('c')], 'gen');
    const third = channel.send([requests.get('d')]);
    expect(writes).toHaveLength(0);
    await tick();
    expect(writes).toHaveLength(1);
    const frames = writes[0] as Sent[];
    expect(frames.map((frame) => frame.key)).toStrictEqual(['a', 'b', 'c', 'd', 'gen']);
    expect(new Set(frames.map((frame) => frame.opaque)).size).toBe(5);
    // One memjs response deadline per request, though they went out in one write.
    expect(server.requestTimeouts).toHaveLength(5);
    frames.forEach((frame) => answer(frame, frame.key.toUpperCase()));
    const values = async (sent: Promise<{ value: Buffer }[]>): Promise<string[]> =>
      (await sent).map((reply) => reply.value.toString('latin1'));
    expect(await values(first)).toStrictEqual(['A', 'GEN']);
    expect(await values(second)).toStrictEqual(['B', 'C', 'GEN']);
    expect(await values(third)).toStrictEqual(['D']);
  });

  it('writes the requests of a later tick separately', async () => {
    const { server, writes } = fakeServer();
    const channel = channelOver(server);
    void channel.send([requests.get('a')], 'gen');
    await tick();
    void channel.send([requests.get('b')], 'gen');
    await tick();
    expect(writes.map((frames) => frames.map((frame) => frame.key))).toStrictEqual([
      ['a', 'gen'],
      ['b', 'gen'],
    ]);
  });

  it('corks the socket instead of joining while memjs is not connected, still one deadline per request', async () => {
    const { server, writes, corked } = fakeServer();
    server.connected = false;
    const channel = channelOver(server);
    void channel.send([requests.get('a'), requests.get('b')]);
    await tick();
    expect(writes.map((frames) => frames.map((frame) => frame.key))).toStrictEqual([['a'], ['b']]);
    expect(corked()).toBe(1);
    expect(server.requestTimeouts).toHaveLength(2);
  });

  it('fails every send of the tick, the shared read included, when the connection fails', async () => {
    const { server, writes, answer } = fakeServer();
    const channel = channelOver(server);
    const first = channel.send([requests.get('a')], 'gen');
    const second = channel.send([requests.set('b', new Uint8Array([1]), 0, 0)], 'gen');
    await tick();
    answer((writes[0] as Sent[])[0] as Sent);
    const reported = new Error('connection reset');
    server.error(reported);
    await expect(first).rejects.toBeInstanceOf(ServerFailure);
    await expect(second).rejects.toMatchObject({ server: '127.0.0.1:11211', reported });
  });

  it('sends already-encoded frames as they are, with fresh opaque ids', async () => {
    const { server, writes } = fakeServer();
    const channel = channelOver(server);
    void channel.send([requests.get('a')]);
    void channel.sendFrames([]);
    await tick();
    expect(writes).toHaveLength(1);
    expect((writes[0] as Sent[])[0]).toMatchObject({ opcode: Opcode.get, key: 'a', opaque: 1 });
    await expect(channel.sendFrames([])).resolves.toStrictEqual([]);
  });
});
