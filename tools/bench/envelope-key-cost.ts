/**
 * What carrying the user key in the value envelope costs (version 2, written when the stored
 * key differs from the user key, so that `keys()` can name values under a hashing mangler).
 *
 *   npm run build && npx tsx tools/bench/envelope-key-cost.ts [--rounds N] [--ops N]
 *
 * Two levels, each as the median of `--rounds` (15) rounds of `--ops` (200 000) operations,
 * timed on process CPU time (time spent descheduled on a busy machine does not count), the two
 * contenders alternating which goes first:
 * - the envelope alone: `seal` + `open` of a small tagged-codec payload without a key
 *   (version 1) and with keys of 16 and 200 characters (version 2);
 * - `set` + `get` on a `KeyValueStore` over `MemoryBackend` (the built `@latchkey/core`) with a
 *   mangler that returns the key unchanged (version 1 values) and one that prefixes it (the
 *   stored key differs, so version 2 values carry the key): both manglers are one Map lookup of
 *   a string made in advance, so the difference is the carried key.
 * Bytes per value are exact: 4 bytes of length plus the key's UTF-8.
 *
 * @module
 */
import { KeyValueStore, taggedCodec } from '@latchkey/core';
import { MemoryBackend } from '@latchkey/memory';
import { open, seal } from '../../packages/core/src/internal/envelope.js';

const args = new Map<string, string>();
for (let index = 2; index < process.argv.length; index += 2) args.set(process.argv[index] ?? '', process.argv[index + 1] ?? '');
const rounds = Number(args.get('--rounds') ?? 15);
const ops = Number(args.get('--ops') ?? 200_000);

const payload = taggedCodec.encode({ id: 42, name: 'Ada Lovelace', roles: ['admin', 'ops'] });
const shortKey = 'user:42:session';
const longKey = `tenant:acme:user:${'x'.repeat(183)}`;

function cpuNs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) * 1000;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

function envelopeRound(key: string | undefined): number {
  let sink = 0;
  const started = cpuNs();
  for (let i = 0; i < ops; i++) sink += open(seal(payload, 1_800_000_000_000, key)).payload.byteLength;
  const ns = (cpuNs() - started) / ops;
  if (sink === 0) throw new Error('unreachable');
  return ns;
}

async function storeRound(store: KeyValueStore, keys: readonly string[]): Promise<number> {
  const value = { id: 42, name: 'Ada Lovelace', roles: ['admin', 'ops'] };
  const started = cpuNs();
  for (let i = 0; i < ops / 10; i++) {
    const key = keys[i % keys.length] as string;
    await store.set(key, value);
    await store.get(key);
  }
  return (cpuNs() - started) / (ops / 10);
}

async function main(): Promise<void> {
  console.log(`envelope key cost: ${rounds} rounds × ${ops} ops (store rounds: ${ops / 10} set+get), CPU time, medians\n`);
  console.log('| envelope seal + open | ns/op | bytes/value |');
  console.log('| --- | --- | --- |');
  const cases: [string, string | undefined][] = [
    ['version 1 (no key)', undefined],
    [`version 2, ${shortKey.length}-char key`, shortKey],
    [`version 2, ${longKey.length}-char key`, longKey],
  ];
  const results = new Map<string, number[]>(cases.map(([name]) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? cases : [...cases].reverse();
    for (const [name, key] of order) results.get(name)?.push(envelopeRound(key));
  }
  for (const [name, key] of cases) {
    console.log(`| ${name} | ${median(results.get(name) ?? []).toFixed(1)} | ${seal(payload, 1_800_000_000_000, key).byteLength} |`);
  }

  const keys = Array.from({ length: 1000 }, (_, index) => `user:${index}:session`);
  // Both manglers are one Map lookup answering a string made in advance: the same key, or a
  // prefixed copy. Only the second makes the stored key differ, so only it carries the key.
  const same = new Map(keys.map((key) => [key, key]));
  const prefixed = new Map(keys.map((key) => [key, `p${key}`]));
  const plain = new KeyValueStore('bench-envelope-v1');
  await plain.configure(new MemoryBackend(), { keyMangler: (key) => same.get(key) ?? key });
  const carried = new KeyValueStore('bench-envelope-v2');
  await carried.configure(new MemoryBackend(), { keyMangler: (key) => prefixed.get(key) ?? key });
  const storeResults = { plain: [] as number[], carried: [] as number[] };
  await storeRound(plain, keys);
  await storeRound(carried, keys);
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      storeResults.plain.push(await storeRound(plain, keys));
      storeResults.carried.push(await storeRound(carried, keys));
    } else {
      storeResults.carried.push(await storeRound(carried, keys));
      storeResults.plain.push(await storeRound(plain, keys));
    }
  }
  console.log('\n| store set + get over MemoryBackend | ns/op |');
  console.log('| --- | --- |');
  console.log(`| stored key = user key (version 1) | ${median(storeResults.plain).toFixed(0)} |`);
  console.log(`| stored key ≠ user key (version 2, ~16-char key carried) | ${median(storeResults.carried).toFixed(0)} |`);
  await plain.close();
  await carried.close();
}

await main();
