/**
 * The values the benchmarks store, built deterministically (no randomness, so every run and
 * every contender handles the same bytes).
 *
 * @module
 */

/**
 * A small, JSON-friendly record like a Keystone token-index entry (~200 bytes encoded):
 * strings, numbers, booleans, a short array and a nested object.
 */
export function smallValue(seed = 0): Record<string, unknown> {
  return {
    id: `tok-${(seed * 7919 + 104_729).toString(36)}-4f1c9a`,
    userId: `user-${seed % 1000}`,
    projectId: 'p-8c2e1f0a',
    roles: ['member', 'reader', seed % 3 === 0 ? 'admin' : 'auditor'],
    issuedAt: 1_735_000_000_000 + seed,
    expiresAt: 1_735_003_600_000 + seed,
    scope: { domain: 'default', system: false },
    methods: ['password'],
    count: seed,
  };
}

/** A JSON-friendly object of about `bytes` bytes of JSON (default 10 KB): a user with projects. */
export function largeValue(bytes = 10_240): Record<string, unknown> {
  const projects: Record<string, unknown>[] = [];
  const value = { userId: 'user-42', domain: 'default', enabled: true, projects };
  for (let i = 0; JSON.stringify(value).length < bytes; i++) {
    projects.push({
      id: `p-${((i * 2_654_435_761) % 4_294_967_296).toString(16).padStart(8, '0')}`,
      name: `project ${i}`,
      roles: i % 2 === 0 ? ['member'] : ['member', 'admin'],
      enabled: i % 5 !== 0,
      quota: { cores: 8 + (i % 4), ramMb: 16_384, instances: 10 },
    });
  }
  return value;
}

/**
 * A value JSON cannot carry: a `Map` of 50 sessions keyed by id, each with `Date`s, a
 * `BigInt` counter, a `Set` of scopes and a `Uint8Array` fingerprint.
 */
export function richValue(): Map<string, unknown> {
  const sessions = new Map<string, unknown>();
  for (let i = 0; i < 50; i++) {
    sessions.set(`s-${i}`, {
      user: `user-${i}`,
      createdAt: new Date(Date.UTC(2025, 0, 1, 0, i)),
      lastSeen: new Date(Date.UTC(2025, 0, 2, 12, i)),
      bytesServed: 9_007_199_254_740_993n + BigInt(i),
      scopes: new Set(['identity', i % 2 === 0 ? 'compute' : 'storage']),
      fingerprint: Uint8Array.from({ length: 16 }, (_, j) => (i * 31 + j) & 0xff),
    });
  }
  return sessions;
}

/** `count` keys with a common prefix: `prefix0`, `prefix1`, … */
export function keyRange(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${i}`);
}

/** Consecutive windows of `size` keys out of `keys` (for getMany), `count` of them. */
export function keyWindows(keys: readonly string[], size: number, count: number): string[][] {
  return Array.from({ length: count }, (_, w) => Array.from({ length: size }, (_, i) => keys[(w * size + i) % keys.length] as string));
}
