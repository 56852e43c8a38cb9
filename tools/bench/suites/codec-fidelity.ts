/**
 * Which value types survive an encode/decode round trip exactly, per codec, and which corrupt
 * bytes each codec rejects: the tables printed after the codec timings.
 *
 * @module
 */

/** A codec as the fidelity check sees it: bytes out, value back (possibly another instance). */
export interface FidelityCodec {
  readonly name: string;
  readonly roundTrip: (value: unknown) => unknown;
}

/** One row of the table. */
export interface FidelitySample {
  readonly label: string;
  readonly make: () => unknown;
  /** The value cannot be stored meaningfully; the right outcome is to refuse it. */
  readonly shouldRefuse?: boolean;
}

class Account {
  constructor(readonly id: string) {}
}

/** The rows of the fidelity table. */
export const FIDELITY_SAMPLES: readonly FidelitySample[] = [
  { label: '`null`', make: () => null },
  { label: '`undefined`', make: () => undefined },
  { label: 'booleans', make: () => [true, false] },
  { label: '`-0`', make: () => -0 },
  { label: '`NaN`, `±Infinity`', make: () => [Number.NaN, Infinity, -Infinity] },
  { label: 'large integer number (2^53 − 1)', make: () => Number.MAX_SAFE_INTEGER },
  { label: 'empty and non-ASCII strings', make: () => ['', 'café ☕ 𝄞 日本'] },
  { label: 'array with `undefined`', make: () => [1, undefined, 3] },
  { label: 'object with an `undefined` property', make: () => ({ a: 1, b: undefined }) },
  { label: 'nested plain objects', make: () => ({ a: { b: { c: [1, { d: 'e' }] } } }) },
  { label: '`Date`', make: () => new Date(Date.UTC(2025, 5, 1, 12, 30, 15, 123)) },
  { label: '`Uint8Array`', make: () => Uint8Array.from([0, 1, 254, 255]) },
  { label: '`Buffer`', make: () => Buffer.from('bytes') },
  { label: '`BigInt`', make: () => 12_345_678_901_234_567_890n },
  {
    label: '`Map` (string keys)',
    make: () =>
      new Map<string, unknown>([
        ['a', 1],
        ['b', { c: 2 }],
      ]),
  },
  {
    label: '`Map` (non-string keys)',
    make: () =>
      new Map<unknown, string>([
        [1, 'one'],
        [true, 'yes'],
      ]),
  },
  { label: '`Set`', make: () => new Set([1, 'two', 3]) },
  { label: '`RegExp`', make: () => /^a+b?$/giu },
  { label: '`Error` (a `RangeError`)', make: () => new RangeError('boom') },
  // eslint-disable-next-line no-sparse-arrays
  { label: 'sparse array (a hole)', make: () => [1, , 3] },
  {
    label: 'sub-object shared by two parents (no cycle)',
    make: () => {
      const shared = { k: 1 };
      return { a: shared, b: shared };
    },
  },
  { label: 'array with a named property', make: () => Object.assign(['a', 'b'], { note: 'x' }) },
  {
    label: 'object with a cycle',
    make: () => {
      const node: Record<string, unknown> = { name: 'self' };
      node['self'] = node;
      return node;
    },
  },
  { label: 'class instance', make: () => new Account('a-1') },
  { label: 'function (must be refused)', make: () => ({ run: () => 1 }), shouldRefuse: true },
  { label: 'symbol (must be refused)', make: () => ({ tag: Symbol('x') }), shouldRefuse: true },
];

function kind(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object') return typeof value;
  if (Buffer.isBuffer(value)) return 'Buffer';
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === null) return 'null-prototype object';
  const name = (proto as { constructor?: { name?: string } }).constructor?.name;
  return name === 'Object' ? 'plain object' : (name ?? 'object');
}

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 20 ? `${value.slice(0, 20)}…` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (Object.is(value, -0)) return '-0';
  return String(value);
}

/**
 * The first difference between `expected` and `actual`, or `undefined` when `actual` is an
 * exact copy: same types (prototypes), same numbers (`Object.is`), same keys and entries in
 * order, and the same cycles and shared objects.
 */
export function firstDifference(expected: unknown, actual: unknown, path = 'value', seen = new Map<object, unknown>()): string | undefined {
  if (typeof expected !== 'object' || expected === null || typeof actual !== 'object' || actual === null) {
    if (typeof expected === 'function' || typeof actual === 'function') return `${path}: ${kind(expected)} became ${kind(actual)}`;
    if (typeof expected !== typeof actual || (expected === null) !== (actual === null))
      return `${path}: ${kind(expected)} became ${kind(actual)}`;
    return Object.is(expected, actual) ? undefined : `${path}: ${show(expected)} became ${show(actual)}`;
  }
  if (seen.has(expected))
    return seen.get(expected) === actual ? undefined : `${path}: a second reference to one object became a separate copy`;
  seen.set(expected, actual);
  if (kind(expected) !== kind(actual)) return `${path}: ${kind(expected)} became ${kind(actual)}`;
  if (expected instanceof Date) return Object.is(expected.getTime(), (actual as Date).getTime()) ? undefined : `${path}: the time changed`;
  if (expected instanceof RegExp) {
    const other = actual as RegExp;
    return expected.source === other.source && expected.flags === other.flags
      ? undefined
      : `${path}: became /${other.source}/${other.flags}`;
  }
  if (ArrayBuffer.isView(expected)) {
    const a = new Uint8Array(expected.buffer, expected.byteOffset, expected.byteLength);
    const view = actual as ArrayBufferView;
    const b = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    return a.length === b.length && a.every((byte, i) => byte === b[i]) ? undefined : `${path}: the bytes changed`;
  }
  if (expected instanceof Map) {
    const other = actual as Map<unknown, unknown>;
    if (expected.size !== other.size) return `${path}: ${expected.size} entries became ${other.size}`;
    const theirs = [...other.entries()];
    let i = 0;
    for (const [key, value] of expected) {
      const [otherKey, otherValue] = theirs[i++] as [unknown, unknown];
      const keyDiff = firstDifference(key, otherKey, `${path} key`, seen);
      if (keyDiff !== undefined) return keyDiff;
      const valueDiff = firstDifference(value, otherValue, `${path}.get(${show(key)})`, seen);
      if (valueDiff !== undefined) return valueDiff;
    }
    return undefined;
  }
  if (expected instanceof Set) {
    const theirs = [...(actual as Set<unknown>)];
    if (expected.size !== theirs.length) return `${path}: ${expected.size} members became ${theirs.length}`;
    let i = 0;
    for (const member of expected) {
      const diff = firstDifference(member, theirs[i++], `${path} member`, seen);
      if (diff !== undefined) return diff;
    }
    return undefined;
  }
  const expectedKeys = Reflect.ownKeys(expected);
  const actualKeys = Reflect.ownKeys(actual);
  const missing = expectedKeys.find((key) => !actualKeys.includes(key));
  if (missing !== undefined) return `${path}.${String(missing)}: the key was dropped`;
  const extra = actualKeys.find((key) => !expectedKeys.includes(key));
  if (extra !== undefined) return `${path}: gained a key ${String(extra)}`;
  for (const key of expectedKeys) {
    const diff = firstDifference(
      (expected as Record<PropertyKey, unknown>)[key],
      (actual as Record<PropertyKey, unknown>)[key],
      `${path}.${String(key)}`,
      seen,
    );
    if (diff !== undefined) return diff;
  }
  return undefined;
}

/** The verdict for one sample and codec, as a table cell. */
export function verdict(codec: FidelityCodec, sample: FidelitySample): { ok: boolean; text: string } {
  const value = sample.make();
  let back: unknown;
  try {
    back = codec.roundTrip(value);
  } catch (error) {
    const message = (error instanceof Error ? error.message : String(error)).split('\n')[0]?.slice(0, 60) ?? '';
    return sample.shouldRefuse === true ? { ok: true, text: '✅ refused' } : { ok: false, text: `❌ throws (${message})` };
  }
  const diff = firstDifference(value, back);
  if (sample.shouldRefuse === true) return { ok: false, text: `❌ accepted silently${diff === undefined ? '' : ` (${diff})`}` };
  return diff === undefined ? { ok: true, text: '✅' } : { ok: false, text: `❌ ${diff}` };
}

/** The fidelity table as markdown, with a count of exact round trips per codec. */
export function fidelityMarkdown(codecs: readonly FidelityCodec[]): string {
  const header = `| value | ${codecs.map((c) => c.name).join(' | ')} |`;
  const rule = `| --- | ${codecs.map(() => '---').join(' | ')} |`;
  const scores = codecs.map(() => 0);
  const rows = FIDELITY_SAMPLES.map((sample) => {
    const cells = codecs.map((codec, i) => {
      const result = verdict(codec, sample);
      if (result.ok) scores[i] = (scores[i] as number) + 1;
      return result.text.replace(/\|/g, '\\|');
    });
    return `| ${sample.label} | ${cells.join(' | ')} |`;
  });
  const total = `| **right outcome** | ${scores.map((s) => `**${s} / ${FIDELITY_SAMPLES.length}**`).join(' | ')} |`;
  return [
    '### Fidelity: which values come back exactly',
    '',
    'Each value is encoded and decoded (msgpackr: by a second `Packr` with the same options, as another process would); ' +
      '✅ means an exact copy (same types and prototypes, `Object.is` numbers, same keys, entries, cycles and shared objects), or, for functions and symbols, that the codec refused the value.',
    '',
    header,
    rule,
    ...rows,
    total,
  ].join('\n');
}

/** A codec as the corrupt-bytes table sees it. */
export interface CorruptionCodec {
  readonly name: string;
  readonly encode: (value: unknown) => Uint8Array;
  readonly decode: (bytes: Uint8Array) => unknown;
}

/** Deterministic bytes (xorshift32), so every run tests the same garbage. */
function byteSource(seed: number): () => number {
  let state = seed;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) & 0xff;
  };
}

function accepts(codec: CorruptionCodec, bytes: Uint8Array): boolean {
  try {
    codec.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

const GARBAGE_COUNT = 200;

/**
 * How many corrupt byte strings each codec decodes without throwing, as markdown: random
 * bytes, random bytes behind the codec's own first byte, every truncation and every single-bit
 * flip of a real payload (the encoding of `sample`).
 */
export function corruptionMarkdown(codecs: readonly CorruptionCodec[], sample: unknown): string {
  const rows: { label: string; cell: (codec: CorruptionCodec) => string }[] = [
    {
      label: `${GARBAGE_COUNT} random byte strings of 1–64 bytes`,
      cell: (codec) => {
        const next = byteSource(0x2545f491);
        let accepted = 0;
        for (let i = 0; i < GARBAGE_COUNT; i++) if (accepts(codec, Uint8Array.from({ length: 1 + (next() % 64) }, next))) accepted++;
        return `${accepted} / ${GARBAGE_COUNT}`;
      },
    },
    {
      label: `${GARBAGE_COUNT} byte strings: the first byte of a real payload, then 1–63 random bytes`,
      cell: (codec) => {
        const first = codec.encode(sample)[0] ?? 0;
        const next = byteSource(0x9e3779b9);
        let accepted = 0;
        for (let i = 0; i < GARBAGE_COUNT; i++) {
          if (accepts(codec, Uint8Array.from([first, ...Uint8Array.from({ length: 1 + (next() % 63) }, next)]))) accepted++;
        }
        return `${accepted} / ${GARBAGE_COUNT}`;
      },
    },
    {
      label: 'every truncation of a real payload',
      cell: (codec) => {
        const payload = codec.encode(sample);
        let accepted = 0;
        for (let length = 0; length < payload.length; length++) if (accepts(codec, payload.subarray(0, length))) accepted++;
        return `${accepted} / ${payload.length}`;
      },
    },
    {
      label: 'every single-bit flip of a real payload',
      cell: (codec) => {
        const payload = codec.encode(sample);
        let accepted = 0;
        for (let i = 0; i < payload.length; i++) {
          for (let bit = 0; bit < 8; bit++) {
            const flipped = Uint8Array.from(payload); // a copy: Buffer#slice would flip the payload itself
            flipped[i] = (flipped[i] as number) ^ (1 << bit);
            if (accepts(codec, flipped)) accepted++;
          }
        }
        return `${accepted} / ${payload.length * 8}`;
      },
    },
  ];
  return [
    '### Corrupt bytes: how many each codec decodes without an error',
    '',
    'Fewer is better. The real payload is the encoding of the small object. None of the codecs has a checksum, so a flipped bit ' +
      'inside a string or a number usually still decodes (to a different value); the store relies on its envelope header and on the codec to reject foreign bytes.',
    '',
    `| corruption | ${codecs.map((c) => c.name).join(' | ')} |`,
    `| --- | ${codecs.map(() => '---:').join(' | ')} |`,
    ...rows.map((row) => `| ${row.label} | ${codecs.map((codec) => row.cell(codec)).join(' | ')} |`),
  ].join('\n');
}
