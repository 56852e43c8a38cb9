import { randomBytes } from 'node:crypto';
import type { Cluster } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { clusterSlot } from '../../src/internal/cluster-slot.js';
import { fenceKeyOf, KeyLayout, lockKeyOf } from '../../src/internal/key-layout.js';
import { availableTargets, closeAll } from '../support/targets.js';

afterAll(closeAll);

const cluster = availableTargets('slot computation against CLUSTER KEYSLOT').filter((target) => target.name === 'cluster');

describe.each(cluster)('slot computation against a real $name', (target) => {
  it('agrees with CLUSTER KEYSLOT, hash tags and UTF-8 included', async () => {
    const [node] = await target.masters();
    const keys = [
      '123456789',
      '{user1000}.following',
      'foo{}{bar}',
      'foo{{bar}}zap',
      'café',
      '日本語{タグ}',
      ...Array.from({ length: 200 }, () => randomBytes(12).toString('base64')),
    ];
    for (const key of keys) expect(clusterSlot(key), key).toBe(await node?.cluster('KEYSLOT', key));
  });

  it('completes batches when its slot map is stale (redirections), with results in input order', async () => {
    const backend = target.create();
    const cluster = backend.client as Cluster;
    await backend.get('warm-up');
    const keys = Array.from({ length: 60 }, (_, i) => `stale-${i}`);
    const nodes = [...new Set(cluster.slots.flat())];
    expect(nodes.length).toBeGreaterThan(1);
    const misroute = (): void => {
      // Point every slot at the "next" node, as a map from before a resharding would.
      cluster.slots.forEach((owners, slot) => {
        const owner = owners[0];
        if (owner !== undefined) cluster.slots[slot] = [nodes[(nodes.indexOf(owner) + 1) % nodes.length] as string];
      });
    };
    misroute();
    await backend.setMany(keys.map((key) => [key, new TextEncoder().encode(key)] as const));
    misroute();
    const values = await backend.getMany(keys);
    expect(values.map((value) => (value === undefined ? undefined : new TextDecoder().decode(value)))).toEqual(keys);
    misroute();
    await backend.deleteMany(keys);
    expect((await backend.getMany(keys)).every((value) => value === undefined)).toBe(true);
  });

  it('keeps data, lock and fence of every key on one slot, on the server too', async () => {
    const [node] = await target.masters();
    const layout = new KeyLayout('p:');
    for (const key of ['plain', 'a{b}c', '\ud800x', 'x'.repeat(300)]) {
      const data = layout.dataKey(key);
      const slot = await node?.cluster('KEYSLOT', data);
      expect(await node?.cluster('KEYSLOT', lockKeyOf(data))).toBe(slot);
      expect(await node?.cluster('KEYSLOT', fenceKeyOf(data))).toBe(slot);
    }
  });
});
