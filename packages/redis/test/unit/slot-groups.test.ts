import { describe, expect, it } from 'vitest';
import { clusterSlot } from '../../src/internal/cluster-slot.js';
import { batchByNode, groupBySlot } from '../../src/internal/slot-groups.js';

describe('groupBySlot', () => {
  it('groups positions by slot, in input order, duplicates included', () => {
    const keys = ['{a}1', '{b}1', '{a}2', '{b}2', '{a}1', 'c'];
    const groups = groupBySlot(keys);
    expect(groups.map((g) => g.indexes)).toEqual([[0, 2, 4], [1, 3], [5]]);
    for (const group of groups) for (const index of group.indexes) expect(clusterSlot(keys[index] as string)).toBe(group.slot);
  });

  it('covers every position exactly once', () => {
    const keys = Array.from({ length: 500 }, (_, i) => `key-${i % 450}`);
    const positions = groupBySlot(keys)
      .flatMap((g) => g.indexes)
      .sort((a, b) => a - b);
    expect(positions).toEqual(keys.map((_, i) => i));
  });

  it('gives no groups for no keys', () => {
    expect(groupBySlot([])).toEqual([]);
  });
});

describe('batchByNode', () => {
  it('merges the groups of one node and keeps unmapped slots alone', () => {
    const groups = [
      { slot: 1, indexes: [0] },
      { slot: 9_000, indexes: [1] },
      { slot: 2, indexes: [2] },
      { slot: 16_000, indexes: [3] },
      { slot: 3, indexes: [4] },
    ];
    const nodeOf = (slot: number): string | undefined => (slot < 5_000 ? 'n1' : slot < 10_000 ? 'n2' : undefined);
    const batches = batchByNode(groups, nodeOf);
    expect(batches.map((batch) => batch.map((g) => g.slot))).toEqual([[1, 2, 3], [9_000], [16_000]]);
  });
});
