/**
 * Codec suite: the tagged codec (JSON for plain JSON data, v8 for the rest) against v8,
 * msgpackr and JSON: encode, decode and encode + decode round trips per value shape, then the
 * fidelity and corrupt-bytes tables.
 *
 * @module
 */
import { jsonCodec, taggedCodec, v8Codec } from '@latchkey/core';
import { Packr } from 'msgpackr';
import { ratioAtLeast, type BenchCase, type Contender, type Suite } from '../harness/index.js';
import { corruptionMarkdown, fidelityMarkdown, firstDifference, type CorruptionCodec, type FidelityCodec } from './codec-fidelity.js';
import { largeValue, richValue, smallValue } from './values.js';

const PACKR_OPTIONS = { structuredClone: true, moreTypes: true } as const;

/** Shorter rounds than the default, and more of them: 15 cases × 4 codecs stay near a minute. */
const CODEC_TIMING = { rounds: 7, roundMs: 200, warmupMs: 100 } as const;

interface BenchCodec {
  readonly name: string;
  readonly does: string;
  readonly encode: (value: unknown) => Uint8Array;
  readonly decode: (bytes: Uint8Array) => unknown;
}

function codecs(): BenchCodec[] {
  const packr = new Packr(PACKR_OPTIONS);
  return [
    {
      name: 'tagged',
      does: '`taggedCodec` from @latchkey/core: a check, then `J` + UTF-8 JSON for plain JSON data, `node:v8` for the rest',
      encode: taggedCodec.encode,
      decode: taggedCodec.decode,
    },
    {
      name: 'v8',
      does: '`v8Codec` from @latchkey/core (`node:v8` serialize / deserialize)',
      encode: v8Codec.encode,
      decode: v8Codec.decode,
    },
    {
      name: 'msgpackr',
      does: '`new Packr({ structuredClone: true, moreTypes: true })`, `pack` / `unpack` on one instance',
      encode: (value) => packr.pack(value),
      decode: (bytes) => packr.unpack(bytes) as unknown,
    },
    {
      name: 'JSON',
      does: '`jsonCodec` from @latchkey/core (`JSON.stringify` to UTF-8 bytes / `JSON.parse`)',
      encode: jsonCodec.encode,
      decode: jsonCodec.decode,
    },
  ];
}

/** A short list of token ids, as a token index stores per user. */
function smallArray(): unknown[] {
  return ['tok-a1', 'tok-b2', 'tok-c3', 'tok-d4', 'tok-e5', 1_735_000_000_000, true, null];
}

type Step = 'round trip' | 'encode' | 'decode';

interface Shape {
  readonly name: string;
  readonly what: string;
  readonly make: () => unknown;
  /** JSON can carry it: JSON is the baseline and the tagged codec's goal is ≥ 0.9× JSON. */
  readonly jsonShaped: boolean;
}

const SHAPES: readonly Shape[] = [
  { name: 'small object', what: 'a small JSON-friendly record (a token-index entry)', make: () => smallValue(), jsonShaped: true },
  { name: 'small array', what: 'a JSON array of 8 token ids, a number, a boolean and a null', make: smallArray, jsonShaped: true },
  {
    name: '4 KB object',
    what: 'a JSON-friendly object of about 4 KB (a user with 30-odd projects)',
    make: () => largeValue(4096),
    jsonShaped: true,
  },
  {
    name: '10 KB object',
    what: 'a JSON-friendly object of about 10 KB (a user with 60-odd projects)',
    make: () => largeValue(),
    jsonShaped: true,
  },
  {
    name: 'Map/Date/BigInt value',
    what: 'a `Map` of 50 sessions, each with `Date`s, a `BigInt`, a `Set` and a `Uint8Array`',
    make: () => richValue(),
    jsonShaped: false,
  },
];

function operation(step: Step, codec: BenchCodec, value: unknown, encoded: Uint8Array): () => unknown {
  switch (step) {
    case 'round trip':
      return () => codec.decode(codec.encode(value));
    case 'encode':
      return () => codec.encode(value);
    case 'decode':
      return () => codec.decode(encoded);
  }
}

function codecCase(shape: Shape, step: Step): BenchCase {
  const what =
    step === 'round trip'
      ? `Encode then decode ${shape.what}; one operation is one round trip`
      : `${step === 'encode' ? 'Encode' : 'Decode'} ${shape.what}`;
  return {
    name: `${shape.name}: ${step}`,
    description: what,
    baseline: shape.jsonShaped ? 'JSON' : 'v8',
    mode: 'sync',
    timing: CODEC_TIMING,
    metrics: [
      { key: 'ns', label: 'ns/op', aggregate: 'median' },
      { key: 'bytes', label: 'encoded bytes', aggregate: 'median' },
    ],
    targets: shape.jsonShaped && step === 'round trip' ? [ratioAtLeast('tagged', 'JSON', 0.9)] : [],
    setup: () => {
      const value = shape.make();
      const contenders = codecs().map((codec): Contender => {
        let encoded: Uint8Array;
        let lost: string | undefined;
        try {
          encoded = codec.encode(value);
          lost = firstDifference(value, codec.decode(encoded));
        } catch (error) {
          return {
            name: codec.name,
            does: codec.does,
            unavailable: `cannot encode this value: ${error instanceof Error ? error.message : String(error)}`,
          };
        }
        // A lossy round trip is fast for the wrong reason (JSON turns a Map into `{}`).
        if (lost !== undefined) return { name: codec.name, does: codec.does, unavailable: `does not round-trip this value (${lost})` };
        const bytes = encoded.byteLength;
        return {
          name: codec.name,
          does: codec.does,
          op: operation(step, codec, value, encoded),
          afterRound: (sample) => ({ bytes, ns: sample.ops > 0 ? (sample.elapsedMs * 1e6) / sample.ops : Number.NaN }),
        };
      });
      return { contenders };
    },
  };
}

function fidelityCodecs(): FidelityCodec[] {
  return [
    { name: 'tagged', roundTrip: (value) => taggedCodec.decode(taggedCodec.encode(value)) },
    { name: 'v8', roundTrip: (value) => v8Codec.decode(v8Codec.encode(value)) },
    { name: 'msgpackr', roundTrip: (value) => new Packr(PACKR_OPTIONS).unpack(new Packr(PACKR_OPTIONS).pack(value)) as unknown },
    { name: 'JSON', roundTrip: (value) => jsonCodec.decode(jsonCodec.encode(value)) },
  ];
}

function corruptionCodecs(): CorruptionCodec[] {
  return [
    { name: 'tagged', encode: taggedCodec.encode, decode: taggedCodec.decode },
    { name: 'v8', encode: v8Codec.encode, decode: v8Codec.decode },
    {
      name: 'msgpackr',
      encode: (value) => new Packr(PACKR_OPTIONS).pack(value),
      decode: (bytes) => new Packr(PACKR_OPTIONS).unpack(bytes) as unknown,
    },
    { name: 'JSON', encode: jsonCodec.encode, decode: jsonCodec.decode },
  ];
}

/** The `codec` suite. */
export const codecSuite: Suite = {
  name: 'codec',
  title: 'the tagged codec vs v8, msgpackr and JSON',
  description:
    'Encode, decode and round-trip speed (in a synchronous loop) and fidelity of the codecs a `KeyValueStore` can be configured with. ' +
    'The store adds a few bytes of expiry envelope around whatever the codec produces; that is not measured here.',
  prepare: async () => {
    const sizes = SHAPES.map((shape) => `${shape.name} ${v8Codec.encode(shape.make()).byteLength} B`).join(', ');
    const steps: readonly Step[] = ['round trip', 'encode', 'decode'];
    return {
      notes: [`values (v8 encoding): ${sizes}`, `msgpackr options: \`${JSON.stringify(PACKR_OPTIONS)}\``],
      cases: SHAPES.flatMap((shape) => steps.map((step) => codecCase(shape, step))),
      sections: [fidelityMarkdown(fidelityCodecs()), corruptionMarkdown(corruptionCodecs(), smallValue())],
    };
  },
};
