import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TcpFaultProxy } from '../../src/index.js';

let echo: Server;
let proxy: TcpFaultProxy;
const sockets: Socket[] = [];

beforeEach(async () => {
  echo = createServer((socket) => {
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  const address = echo.address();
  if (address === null || typeof address === 'string') throw new Error('echo server has no port');
  proxy = await TcpFaultProxy.start({ host: '127.0.0.1', port: address.port });
});

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await proxy.close();
  await new Promise((resolve) => echo.close(resolve));
});

async function client(): Promise<Socket> {
  const socket = connect({ host: proxy.host, port: proxy.port });
  sockets.push(socket);
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  return socket;
}

/** Sends `text` and resolves with the first `text.length` bytes echoed back, and how long that took. */
async function roundTrip(socket: Socket, text: string, timeoutMs = 2000): Promise<{ reply: string; ms: number }> {
  const started = performance.now();
  socket.write(text);
  let reply = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off('data', onData);
      reject(new Error(`no full echo within ${timeoutMs} ms (got ${JSON.stringify(reply)})`));
    }, timeoutMs);
    const onData = (data: Buffer): void => {
      reply += data.toString('utf8');
      if (reply.length >= text.length) {
        clearTimeout(timer);
        socket.off('data', onData);
        resolve({ reply, ms: performance.now() - started });
      }
    };
    socket.on('data', onData);
  });
}

describe('TcpFaultProxy', () => {
  it('forwards both directions in pass mode and counts the bytes', async () => {
    const socket = await client();
    expect((await roundTrip(socket, 'hello')).reply).toBe('hello');
    expect(proxy.stats.bytesToServer).toBe(5);
    expect(proxy.stats.bytesToClient).toBe(5);
  });

  it('delays each direction by the added latency, keeping order', async () => {
    const socket = await client();
    await proxy.setMode({ kind: 'latency', ms: 100 });
    const { reply, ms } = await roundTrip(socket, 'abcdef');
    expect(reply).toBe('abcdef');
    expect(ms).toBeGreaterThanOrEqual(195);
  });

  it('resets open connections and refuses new ones while in reset mode', async () => {
    const socket = await client();
    const closed = new Promise((resolve) => socket.once('close', resolve));
    await proxy.setMode({ kind: 'reset' });
    await closed;
    expect(socket.destroyed).toBe(true);
    const late = connect({ host: proxy.host, port: proxy.port });
    sockets.push(late);
    const error = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      late.once('error', resolve);
      late.once('close', () => resolve(undefined));
    });
    expect(error?.code ?? 'closed').toMatch(/ECONNRESET|EPIPE|closed/);
    expect(proxy.stats.resets).toBeGreaterThanOrEqual(2);
  });

  it('holds traffic in a black hole and delivers it in order once healed', async () => {
    const socket = await client();
    await proxy.setMode({ kind: 'blackhole' });
    await expect(roundTrip(socket, 'held', 300)).rejects.toThrow(/no full echo/);
    await proxy.setMode({ kind: 'pass' });
    const { reply } = await roundTrip(socket, '+more');
    expect(reply).toBe('held+more');
  });

  it('holds what clients send until released, in order, while replies already on their way still arrive', async () => {
    const socket = await client();
    const inFlight = roundTrip(socket, 'before');
    expect((await inFlight).reply).toBe('before');
    proxy.holdToServer();
    await expect(roundTrip(socket, 'held', 300)).rejects.toThrow(/no full echo/);
    expect(proxy.stats.bytesToServer).toBe('before'.length);
    proxy.releaseToServer();
    const { reply } = await roundTrip(socket, '+more');
    expect(reply).toBe('held+more');
  });

  it('holds from the next reply on: the request in flight is answered, what follows is held', async () => {
    const socket = await client();
    proxy.holdToServerAfterNextReply();
    expect((await roundTrip(socket, 'first')).reply).toBe('first');
    expect(proxy.holdingToServer).toBe(true);
    await expect(roundTrip(socket, 'second', 300)).rejects.toThrow(/no full echo/);
    proxy.releaseToServer();
    expect((await roundTrip(socket, '+a longer tail')).reply).toBe('second+a longer tail');
  });

  it('refuses connections in refuse mode, and accepts them again on the same port once it is left', async () => {
    const socket = await client();
    const closed = new Promise((resolve) => socket.once('close', resolve));
    const port = proxy.port;
    await proxy.setMode({ kind: 'refuse' });
    await closed;
    const refused = connect({ host: proxy.host, port });
    sockets.push(refused);
    const error = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      refused.once('error', resolve);
      refused.once('connect', () => resolve(undefined));
    });
    expect(error?.code).toBe('ECONNREFUSED');
    await proxy.setMode({ kind: 'pass' });
    expect(proxy.port).toBe(port);
    expect((await roundTrip(await client(), 'back')).reply).toBe('back');
  });

  it('resetConnections drops the open connections and what they hold, and new ones work', async () => {
    const socket = await client();
    await proxy.setMode({ kind: 'blackhole' });
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write('lost');
    proxy.resetConnections();
    await closed;
    await proxy.setMode({ kind: 'pass' });
    expect((await roundTrip(await client(), 'fresh')).reply).toBe('fresh');
    expect(proxy.stats.bytesToServer).toBe('fresh'.length);
  });

  it('rejects a negative latency', async () => {
    await expect(proxy.setMode({ kind: 'latency', ms: -1 })).rejects.toThrow(RangeError);
  });
});
