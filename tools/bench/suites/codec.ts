/**
 * Codec suite: the default v8 codec against msgpackr and JSON, encode + decode round trips,
 * and the fidelity table.
 *
 * @module
 */
import { jsonCodec, v8Codec } from '@latchkey/core';
import { Packr } from 'msgpackr';
import type { BenchCase, Contender, Suite } from '../harness/index.js';
import { fidelityMarkdown, firstDifference, type FidelityCodec } from './codec-fidelity.js';
import { largeValue, richValue, smallValue } from './values.js';

const PACKR_OPTIONS = { structuredClone: true, moreTypes: true } as const;

interface RoundTripCodec {
  readonly name: string;
  readonly does: string;
  readonly encode: (value: unknown) => Uint8Array;
  readonly decode: (bytes: Uint8Array) => unknown;
}

function codecs(): RoundTripCodec[] {
  const packr = new Packr(PACKR_OPTIONS);
  return [
    {
      name: 'v8',
      does: '`v8Codec` from @latchkey/core (`node:v8` serialize / deserialize), the default',
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

function roundTripCase(name: string, what: string, make: () => unknown): BenchCase {
  return {
    name,
    description: `Encode then decode ${what}; one operation is one round trip`,
    baseline: 'v8',
    mode: 'sync',
    metrics: [{ key: 'bytes', label: 'encoded bytes', aggregate: 'median' }],
    setup: () => {
      const value = make();
      const contenders = codecs().map((codec): Contender => {
        let bytes: number;
        let lost: string | undefined;
        try {
          const encoded = codec.encode(value);
          bytes = encoded.byteLength;
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
        return {
          name: codec.name,
          does: codec.does,
          op: () => codec.decode(codec.encode(value)),
          afterRound: () => ({ bytes }),
        };
      });
      return { contenders };
    },
  };
}

function fidelityCodecs(): FidelityCodec[] {
  return [
    { name: 'v8', roundTrip: (value) => v8Codec.decode(v8Codec.encode(value)) },
    { name: 'msgpackr', roundTrip: (value) => new Packr(PACKR_OPTIONS).unpack(new Packr(PACKR_OPTIONS).pack(value)) as unknown },
    { name: 'JSON', roundTrip: (value) => jsonCodec.decode(jsonCodec.encode(value)) },
  ];
}

/** The `codec` suite. */
export const codecSuite: Suite = {
  name: 'codec',
  title: 'the default v8 codec vs msgpackr vs JSON',
  description:
    'Round-trip speed (encode + decode, in a synchronous loop) and fidelity of the codecs a `KeyValueStore` can be configured with. ' +
    'The store adds a few bytes of expiry envelope around whatever the codec produces; that is not measured here.',
  prepare: async () => {
    const small = v8Codec.encode(smallValue()).byteLength;
    const large = v8Codec.encode(largeValue()).byteLength;
    return {
      notes: [
        `values: small object ${small} B, 10 KB object ${large} B, Map/Date/BigInt value ${v8Codec.encode(richValue()).byteLength} B (v8 encoding)`,
        `msgpackr options: \`${JSON.stringify(PACKR_OPTIONS)}\``,
      ],
      cases: [
        roundTripCase('small object', 'a small JSON-friendly record (a token-index entry)', () => smallValue()),
        roundTripCase('10 KB object', 'a JSON-friendly object of about 10 KB (a user with 60-odd projects)', () => largeValue()),
        roundTripCase('Map/Date/BigInt value', 'a `Map` of 50 sessions, each with `Date`s, a `BigInt`, a `Set` and a `Uint8Array`', () =>
          richValue(),
        ),
      ],
      sections: [fidelityMarkdown(fidelityCodecs())],
    };
  },
};
