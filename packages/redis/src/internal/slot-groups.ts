import { clusterSlot } from './cluster-slot.js';

/** Positions (into the caller's input) of the keys that share one cluster hash slot. */
export interface SlotGroup {
  readonly slot: number;
  readonly indexes: number[];
}

/**
 * Groups `keys` by cluster hash slot, keeping input order inside each group and ordering
 * groups by first appearance. Duplicates stay (each position is listed).
 */
export function groupBySlot(keys: readonly string[]): SlotGroup[] {
  const groups = new Map<number, SlotGroup>();
  keys.forEach((key, index) => {
    const slot = clusterSlot(key);
    const group = groups.get(slot);
    if (group === undefined) groups.set(slot, { slot, indexes: [index] });
    else group.indexes.push(index);
  });
  return [...groups.values()];
}

/**
 * Merges slot groups that live on the same node into one batch each, so a batch call costs
 * one round trip per node rather than one per slot. `nodeOf` names a slot's node, or
 * `undefined` when the slot map is not known yet (that group then travels alone).
 */
export function batchByNode(groups: readonly SlotGroup[], nodeOf: (slot: number) => string | undefined): SlotGroup[][] {
  const batches = new Map<string, SlotGroup[]>();
  const alone: SlotGroup[][] = [];
  for (const group of groups) {
    const node = nodeOf(group.slot);
    if (node === undefined) {
      alone.push([group]);
      continue;
    }
    const batch = batches.get(node);
    if (batch === undefined) batches.set(node, [group]);
    else batch.push(group);
  }
  return [...batches.values(), ...alone];
}
