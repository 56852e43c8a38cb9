import { describe, expect, it } from 'vitest';
import { HashRing } from '../../src/internal/hash-ring.js';

const KEYS = Array.from({ length: 20_000 }, (_, i) => `key:${i}`);
const nodes = (n: number): string[] => Array.from({ length: n }, (_, i) => `127.0.0.1:${11211 + i}`);

function owners(ring: HashRing): string[] {
  return KEYS.map((key) => ring.nodes[ring.nodeFor(key)] as string);
}

describe('HashRing (ketama)', () => {
  it('spreads keys roughly evenly', () => {
    const ring = new HashRing(nodes(4));
    const counts = new Map<string, number>();
    for (const owner of owners(ring)) counts.set(owner, (counts.get(owner) ?? 0) + 1);
    for (const count of counts.values()) expect(count / KEYS.length).toBeGreaterThan(0.15);
    expect(counts.size).toBe(4);
  });

  it('is deterministic and independent of the order of construction', () => {
    expect(owners(new HashRing(nodes(3)))).toStrictEqual(owners(new HashRing(nodes(3))));
    expect(owners(new HashRing([...nodes(3)].reverse()))).toStrictEqual(owners(new HashRing(nodes(3))));
  });

  it.each([1, 2, 4, 9])('moves about 1/(N+1) of the keys, all to the new server, when server N+1 joins %i', (n) => {
    const before = owners(new HashRing(nodes(n)));
    const grown = nodes(n + 1);
    const added = grown[n] as string;
    const after = owners(new HashRing(grown));
    const moved = KEYS.filter((_, i) => before[i] !== after[i]);
    const share = moved.length / KEYS.length;
    expect(share).toBeGreaterThan((1 / (n + 1)) * 0.6);
    expect(share).toBeLessThan((1 / (n + 1)) * 1.4);
    for (const key of moved) expect(after[KEYS.indexOf(key)]).toBe(added);
  });

  it('moves only the keys of a server that leaves', () => {
    const all = nodes(3);
    const before = owners(new HashRing(all));
    const after = owners(new HashRing([all[0] as string, all[2] as string]));
    KEYS.forEach((_, i) => {
      if (before[i] !== all[1]) expect(after[i]).toBe(before[i]);
    });
  });

  it('sends every key to the only server of a one-server ring', () => {
    const ring = new HashRing(nodes(1));
    expect(new Set(owners(ring))).toStrictEqual(new Set([nodes(1)[0]]));
  });
});
