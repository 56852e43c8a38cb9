import { createHash } from 'node:crypto';

/** libketama's layout: 40 MD5 digests per server, four ring points per digest. */
const DIGESTS_PER_NODE = 40;
const POINTS_PER_DIGEST = 4;

function md5(text: string): Buffer {
  return createHash('md5').update(text, 'utf8').digest();
}

/**
 * A ketama consistent-hash ring. Each node gets 160 points (the four little-endian 32-bit
 * words of MD5(`<node>-<i>`) for i = 0…39, as libketama lays them out); a key belongs to the
 * node owning the first point at or after the first word of MD5(key), wrapping around.
 *
 * Adding a node to N moves about 1/(N+1) of the keys, all of them to the new node; removing
 * one moves only that node's keys. Lookups are a binary search over 160·N points.
 */
export class HashRing {
  readonly nodes: readonly string[];
  readonly #points: Uint32Array;
  readonly #owners: Uint16Array;

  /** @param nodes - Distinct node names (`host:port`). */
  constructor(nodes: readonly string[]) {
    if (nodes.length === 0) throw new RangeError('A hash ring needs at least one node.');
    this.nodes = [...nodes];
    const entries: [number, number][] = [];
    nodes.forEach((node, owner) => {
      for (let i = 0; i < DIGESTS_PER_NODE; i++) {
        const digest = md5(`${node}-${i}`);
        for (let word = 0; word < POINTS_PER_DIGEST; word++) entries.push([digest.readUInt32LE(word * 4), owner]);
      }
    });
    entries.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    this.#points = Uint32Array.from(entries, ([point]) => point);
    this.#owners = Uint16Array.from(entries, ([, owner]) => owner);
  }

  /** The index (in {@link nodes}) of the node that owns `key`. */
  nodeFor(key: string): number {
    if (this.nodes.length === 1) return 0;
    const hash = md5(key).readUInt32LE(0);
    const points = this.#points;
    let low = 0;
    let high = points.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((points[mid] as number) < hash) low = mid + 1;
      else high = mid;
    }
    return this.#owners[low === points.length ? 0 : low] as number;
  }
}
