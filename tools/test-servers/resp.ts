/**
 * A tiny RESP2 client for the rigs' control commands (`SENTINEL …`, `CLUSTER …`, `INFO`):
 * one connection per command, the command sent as a RESP array (so arguments may hold
 * spaces), and the reply parsed in full, nested arrays included. No client library needed.
 *
 * @module
 */
import { tcpRequest } from './probe.js';

/** A parsed RESP2 reply: status and bulk strings as strings, integers as numbers, nil as `null`. */
export type RespValue = string | number | null | RespError | RespValue[];

/** An error reply (`-ERR …`), returned rather than thrown so callers can tell it from a lost connection. */
export class RespError {
  /** @param message - The error line without the leading `-`. */
  constructor(readonly message: string) {}
}

interface Parsed {
  readonly value: RespValue;
  readonly end: number;
}

/** Parses one reply starting at `at`; `undefined` while it is incomplete. */
function parse(buf: Buffer, at: number): Parsed | undefined {
  const eol = buf.indexOf('\r\n', at, 'latin1');
  if (eol < 0) return undefined;
  const type = String.fromCharCode(buf[at] as number);
  const line = buf.toString('utf8', at + 1, eol);
  const next = eol + 2;
  switch (type) {
    case '+':
      return { value: line, end: next };
    case '-':
      return { value: new RespError(line), end: next };
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, end: next };
      if (buf.length < next + length + 2) return undefined;
      return { value: buf.toString('utf8', next, next + length), end: next + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, end: next };
      const items: RespValue[] = [];
      let position = next;
      for (let i = 0; i < count; i++) {
        const item = parse(buf, position);
        if (item === undefined) return undefined;
        items.push(item.value);
        position = item.end;
      }
      return { value: items, end: position };
    }
    default:
      throw new Error(`unexpected RESP reply type ${JSON.stringify(type)}`);
  }
}

/** `args` as a RESP array of bulk strings. */
function encode(args: readonly (string | number)[]): string {
  return `*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(String(arg))}\r\n${String(arg)}\r\n`).join('')}`;
}

/**
 * Sends one command to `127.0.0.1:port` and resolves its parsed reply (an error reply
 * resolves as a {@link RespError}).
 *
 * @param port - Server port on 127.0.0.1.
 * @param args - Command and arguments, e.g. `['SENTINEL', 'get-master-addr-by-name', 'latchkey']`.
 * @param timeoutMs - Connect + answer deadline; default 2000.
 * @throws On connection errors or the deadline.
 */
export async function respCommand(port: number, args: readonly (string | number)[], timeoutMs = 2_000): Promise<RespValue> {
  const reply = await tcpRequest('127.0.0.1', port, encode(args), (received) => parse(received, 0) !== undefined, timeoutMs);
  return (parse(reply, 0) as Parsed).value;
}

/** Like {@link respCommand}, but an error reply throws. */
export async function respOk(port: number, args: readonly (string | number)[], timeoutMs = 2_000): Promise<RespValue> {
  const reply = await respCommand(port, args, timeoutMs);
  if (reply instanceof RespError) throw new Error(`${args.join(' ')} on 127.0.0.1:${port} answered -${reply.message}`);
  return reply;
}

/** A flat `[field, value, field, value, …]` reply (SENTINEL MASTER, SENTINEL REPLICAS entries) as a record. */
export function fieldsOf(reply: RespValue): Record<string, string> {
  const record: Record<string, string> = {};
  if (!Array.isArray(reply)) return record;
  for (let i = 0; i + 1 < reply.length; i += 2) record[String(reply[i])] = String(reply[i + 1]);
  return record;
}

/** The `field:value` lines of an `INFO` section as a record. */
export function infoFields(info: RespValue): Record<string, string> {
  const record: Record<string, string> = {};
  if (typeof info !== 'string') return record;
  for (const line of info.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) record[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return record;
}
