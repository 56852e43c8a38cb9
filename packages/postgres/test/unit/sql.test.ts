import { InvalidKeyError, ValidationError } from '@latchkey/core';
import { describe, expect, it } from 'vitest';
import {
  checkTextKey,
  decodeBytea,
  encodeByteaArray,
  expiryParam,
  leaseParam,
  parseTableName,
  releaseChannel,
  statementsFor,
  type Statement,
  type Statements,
} from '../../src/internal/sql.js';

const statementsOf = (statements: Statements): Statement[] =>
  Object.values(statements).filter((value): value is Statement => typeof value === 'object');

describe('parseTableName', () => {
  it('quotes a plain name and a schema-qualified one, keeping case', () => {
    expect(parseTableName('latchkey')).toEqual({ schema: undefined, name: 'latchkey', sql: '"latchkey"', text: 'latchkey' });
    expect(parseTableName('Cache.Tokens_2')).toEqual({
      schema: 'Cache',
      name: 'Tokens_2',
      sql: '"Cache"."Tokens_2"',
      text: 'Cache.Tokens_2',
    });
  });

  it.each([
    ['', 'empty'],
    ['a.b.c', 'three parts'],
    ['1abc', 'a leading digit'],
    ['a-b', 'a dash'],
    ['a"b', 'a quote'],
    ["a'b", 'a single quote'],
    ['a b', 'a space'],
    ['a.', 'an empty part'],
    ['x'.repeat(49), 'more than 48 characters'],
  ])('refuses %j (%s) with ValidationError', (table) => {
    expect(() => parseTableName(table)).toThrow(ValidationError);
  });

  it('refuses a non-string with ValidationError', () => {
    expect(() => parseTableName(42)).toThrow(ValidationError);
  });

  it('takes a name of exactly 48 characters', () => {
    expect(parseTableName('x'.repeat(48)).name).toHaveLength(48);
  });
});

describe('checkTextKey', () => {
  it('accepts any well-formed string without NUL', () => {
    expect(() => checkTextKey('café ☕ 日本語 😀 {braces} "quotes" \\ back')).not.toThrow();
  });

  it('refuses a NUL character, which text cannot hold', () => {
    expect(() => checkTextKey('a\u0000b')).toThrow(InvalidKeyError);
  });

  it('refuses lone surrogates, which would all become U+FFFD in UTF-8', () => {
    expect(() => checkTextKey('\ud800x')).toThrow(InvalidKeyError);
    expect(() => checkTextKey('x\udc00')).toThrow(InvalidKeyError);
  });
});

describe('expiryParam and leaseParam', () => {
  it('sends an expiry as ms from now, none as null', () => {
    expect(expiryParam(undefined, 1_000)).toBeNull();
    expect(expiryParam(Infinity, 1_000)).toBeNull();
    expect(expiryParam(1_500.5, 1_000)).toBe(500.5);
  });

  it('clamps an expiry long past to -1 and one centuries away to 1e15 ms, so timestamps never overflow', () => {
    expect(expiryParam(-1e300, 1_000)).toBe(-1);
    expect(expiryParam(1e300, 1_000)).toBe(1e15);
  });

  it('sends a lease of 0 (never lapses) as null and clamps a huge one', () => {
    expect(leaseParam(0)).toBeNull();
    expect(leaseParam(250)).toBe(250);
    expect(leaseParam(1e300)).toBe(1e15);
  });
});

describe('decodeBytea', () => {
  it('decodes the hex form into fresh bytes', () => {
    const text = '\\x00ff10';
    const bytes = decodeBytea(text);
    expect([...bytes]).toEqual([0, 255, 16]);
    expect(decodeBytea(text)).not.toBe(bytes);
  });

  it('decodes the escape form (octal escapes, doubled backslashes, printable bytes)', () => {
    expect([...decodeBytea('a\\000\\\\\\377z')]).toEqual([0x61, 0, 0x5c, 0xff, 0x7a]);
  });

  it('decodes an empty value', () => {
    expect(decodeBytea('\\x')).toHaveLength(0);
  });
});

describe('encodeByteaArray', () => {
  it('writes the binary array format: one dimension of bytea, each element length-prefixed', () => {
    const out = encodeByteaArray([Uint8Array.of(1, 2), new Uint8Array(0), Uint8Array.of(3)]);
    expect(out.readInt32BE(0)).toBe(1); // dimensions
    expect(out.readInt32BE(4)).toBe(0); // no NULLs
    expect(out.readUInt32BE(8)).toBe(17); // bytea
    expect(out.readInt32BE(12)).toBe(3); // elements
    expect(out.readInt32BE(16)).toBe(1); // lower bound
    expect([...out.subarray(20)]).toEqual([0, 0, 0, 2, 1, 2, 0, 0, 0, 0, 0, 0, 0, 1, 3]);
  });

  it('copies the bytes: changing a value afterwards changes nothing', () => {
    const value = Uint8Array.of(7);
    const out = encodeByteaArray([value]);
    value[0] = 9;
    expect(out[24]).toBe(7);
  });
});

describe('releaseChannel', () => {
  it('is the same for the same table, different for another, and fits in a 63-byte identifier', () => {
    const channel = releaseChannel(parseTableName('a.' + 'x'.repeat(48)));
    expect(channel).toBe(releaseChannel(parseTableName('a.' + 'x'.repeat(48))));
    expect(channel).not.toBe(releaseChannel(parseTableName('b.' + 'x'.repeat(48))));
    expect(Buffer.byteLength(channel)).toBeLessThanOrEqual(63);
    expect(channel).toMatch(/^[a-z0-9_]+$/);
  });
});

describe('statementsFor', () => {
  const table = parseTableName('Cache.Tokens');
  const statements = statementsFor(table);

  it('names every statement uniquely per table, within the 63 bytes PostgreSQL keeps', () => {
    const names = statementsOf(statements).map((statement) => statement.name);
    const others = statementsOf(statementsFor(parseTableName('cache.tokens'))).map((statement) => statement.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names.filter((name) => others.includes(name))).toEqual([]);
    for (const name of names) expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
  });

  it('names the table only quoted, in every statement', () => {
    for (const { text } of statementsOf(statements)) {
      expect(text).toContain('"Cache"."Tokens"');
      expect(text.replaceAll('"Cache"."Tokens"', '')).not.toMatch(/Cache|Tokens/);
    }
  });

  it('makes each operation one statement', () => {
    for (const { text } of statementsOf(statements)) expect(text).not.toContain(';');
  });

  it('compares leases with the server clock, never with a time the client sent', () => {
    const bounds = statementsOf(statements).flatMap(({ text }) =>
      [...text.matchAll(/lock_expires_at\s*(?:<=|>)\s*(\S+)/g)].map((m) => m[1]),
    );
    // acquire, locked set, locked delete, release and extend each compare at least once.
    expect(bounds.length).toBeGreaterThanOrEqual(5);
    for (const bound of bounds) expect(bound).toMatch(/^clock_timestamp\(\)/);
  });

  it('creates the table and its expiry index only when the table is missing', () => {
    expect(statements.schema).toContain(`IF to_regclass('"Cache"."Tokens"') IS NULL THEN`);
    expect(statements.schema).toContain('CREATE TABLE IF NOT EXISTS "Cache"."Tokens"');
    expect(statements.schema).toContain('CREATE INDEX IF NOT EXISTS "Tokens_expires_idx" ON "Cache"."Tokens" (expires_at)');
  });
});
