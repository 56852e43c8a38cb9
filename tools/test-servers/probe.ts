/**
 * Readiness probes over raw TCP: no client library needed.
 *
 * @module
 */
import { connect } from 'node:net';
import type { ManagedProcess } from './process.js';

/**
 * Connects to `host:port`, writes `request` and resolves with everything read once
 * `done(received)` is true.
 *
 * @param host - Server host.
 * @param port - Server port.
 * @param request - Bytes to send.
 * @param done - Whether the bytes received so far are a complete answer.
 * @param timeoutMs - Connect + answer deadline; default 1000.
 * @throws On connection errors, a close before `done`, or the deadline.
 */
export function tcpRequest(
  host: string,
  port: number,
  request: string | Uint8Array,
  done: (received: Buffer) => boolean,
  timeoutMs = 1_000,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host, port });
    const finish = (error: Error | undefined, value?: Buffer): void => {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(value ?? Buffer.alloc(0));
    };
    const timer = setTimeout(() => finish(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms`)), timeoutMs);
    socket.once('connect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const all = Buffer.concat(chunks);
      if (done(all)) finish(undefined, all);
    });
    socket.once('error', (error) => finish(error));
    socket.once('close', () => finish(new Error(`${host}:${port} closed the connection`)));
  });
}

/**
 * Sends one inline Redis command and returns the raw reply text once it is complete
 * enough for simple probes (a status/error line, or a bulk string).
 *
 * @param host - Server host.
 * @param port - Server port.
 * @param command - Inline command, e.g. `PING` or `CLUSTER INFO`.
 * @param timeoutMs - Deadline; default 1000.
 */
export async function redisCommand(host: string, port: number, command: string, timeoutMs = 1_000): Promise<string> {
  const reply = await tcpRequest(
    host,
    port,
    `${command}\r\n`,
    (buf) => {
      const text = buf.toString('latin1');
      const eol = text.indexOf('\r\n');
      if (eol < 0) return false;
      if (text[0] === '$') {
        const len = Number(text.slice(1, eol));
        return len < 0 || buf.length >= eol + 2 + len + 2;
      }
      if (text[0] === '*') return /\r\n$/.test(text) && text.split('\r\n').length > 2 * Number(text.slice(1, eol));
      return true;
    },
    timeoutMs,
  );
  return reply.toString('utf8');
}

/** BSON for `{ ping: 1, $db: "admin" }`. */
function pingBson(): Buffer {
  const ping = Buffer.concat([Buffer.from([0x10]), Buffer.from('ping\0'), int32(1)]);
  const db = Buffer.concat([Buffer.from([0x02]), Buffer.from('$db\0'), int32(6), Buffer.from('admin\0')]);
  const body = Buffer.concat([ping, db, Buffer.from([0])]);
  return Buffer.concat([int32(body.length + 4), body]);
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n);
  return b;
}

/**
 * Sends `ping` as an OP_MSG to a MongoDB-wire server and resolves `true` when it
 * answers `ok: 1`.
 *
 * @param host - Server host.
 * @param port - Server port.
 * @param timeoutMs - Deadline; default 1000.
 */
export async function mongoPing(host: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  const doc = pingBson();
  const header = Buffer.alloc(16);
  const length = 16 + 4 + 1 + doc.length;
  header.writeInt32LE(length, 0);
  header.writeInt32LE(1, 4); // requestID
  header.writeInt32LE(0, 8); // responseTo
  header.writeInt32LE(2013, 12); // OP_MSG
  const message = Buffer.concat([header, int32(0), Buffer.from([0]), doc]);
  const reply = await tcpRequest(host, port, message, (buf) => buf.length >= 4 && buf.length >= buf.readInt32LE(0), timeoutMs);
  // Look for the top-level `ok` element: a double (0x01) or int32 (0x10) named "ok".
  const asDouble = reply.indexOf(Buffer.from([0x01, 0x6f, 0x6b, 0x00]), 21);
  if (asDouble >= 0 && asDouble + 12 <= reply.length) return reply.readDoubleLE(asDouble + 4) === 1;
  const asInt = reply.indexOf(Buffer.from([0x10, 0x6f, 0x6b, 0x00]), 21);
  if (asInt >= 0 && asInt + 8 <= reply.length) return reply.readInt32LE(asInt + 4) === 1;
  return false;
}

/** Options of {@link waitUntil}. */
export interface WaitOptions {
  /** What we wait for, for the error message. */
  readonly what: string;
  /** Give up after this long. */
  readonly timeoutMs: number;
  /** Delay between attempts; default 50 ms. */
  readonly intervalMs?: number;
  /** Fail at once, with its log tail, if this process exits while we wait. */
  readonly process?: ManagedProcess;
}

/**
 * Calls `check` until it resolves `true`; a throw counts as "not yet".
 *
 * @param check - The readiness check.
 * @param options - Deadline and context.
 * @throws With the last check error and the server log tail on timeout or early exit.
 */
export async function waitUntil(check: () => Promise<boolean>, options: WaitOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError: string;
  for (;;) {
    const proc = options.process;
    if (proc !== undefined && !proc.running) {
      const status = proc.exitStatus;
      throw new Error(
        `${options.what}: process exited (code ${status?.code ?? '?'}, signal ${status?.signal ?? 'none'}) before it was ready\n` +
          `command: ${proc.commandLine}\nlog tail:\n${proc.logTail()}`,
      );
    }
    try {
      if (await check()) return;
      lastError = 'not ready';
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() >= deadline) {
      const tail = proc === undefined ? '' : `\ncommand: ${proc.commandLine}\nlog tail:\n${proc.logTail()}`;
      throw new Error(`${options.what}: not ready after ${options.timeoutMs} ms (last check: ${lastError})${tail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
  }
}
