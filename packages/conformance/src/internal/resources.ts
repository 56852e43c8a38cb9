import { AsyncLocalStorage, createHook, type AsyncHook } from 'node:async_hooks';

/** A resource (timer, socket, request…) made while a {@link ResourceTracker} was recording. */
interface Tracked {
  readonly type: string;
  readonly resource: object;
}

/** The tracker recording in the current async context, if any. */
const recording = new AsyncLocalStorage<ResourceTracker>();
/** Trackers that may still see resources die: the hook stays on while there is one. */
const open = new Set<ResourceTracker>();
let hook: AsyncHook | undefined;

function ensureHook(): void {
  hook ??= createHook({
    init(asyncId, type, _triggerAsyncId, resource) {
      // Promises come and go with every await; they are not what a backend can leak.
      if (type === 'PROMISE') return;
      recording.getStore()?.add(asyncId, { type, resource });
    },
    destroy(asyncId) {
      for (const tracker of open) tracker.remove(asyncId);
    },
  });
  hook.enable();
}

/**
 * The async resources (timers, sockets, requests — not promises) made by code running inside
 * {@link record}, and which of them are still alive. Unlike `process.getActiveResourcesInfo()`
 * it sees only what the recorded calls made, so checks running at the same time do not blur it.
 * {@link dispose} turns the async hook off again once no tracker is open.
 */
export class ResourceTracker {
  readonly #alive = new Map<number, Tracked>();

  constructor() {
    open.add(this);
    ensureHook();
  }

  /** Runs `work` recording every resource it (and whatever it starts) makes. */
  record<T>(work: () => Promise<T>): Promise<T> {
    return recording.run(this, work);
  }

  /** Runs `work` without recording, e.g. a check's own polling while it waits for the recorded ones to go. */
  unrecorded<T>(work: () => Promise<T>): Promise<T> {
    return recording.exit(work);
  }

  /**
   * Types of the recorded timers and handles (sockets, servers, pipes…) still alive that keep
   * the process running, sorted. Left out: a timer or handle with `hasRef() === false` (it holds
   * nothing open), and requests (a write, a DNS lookup, `crypto.randomBytes`…), which end by
   * themselves and whose end async hooks may report only once they are garbage-collected.
   */
  alive(): string[] {
    const types: string[] = [];
    for (const { type, resource } of this.#alive.values()) {
      const hasRef = (resource as { hasRef?: () => boolean }).hasRef;
      if (typeof hasRef === 'function' && hasRef.call(resource)) types.push(type);
    }
    return types.sort();
  }

  /** Stops tracking; the hook is disabled when no other tracker is open. */
  dispose(): void {
    open.delete(this);
    this.#alive.clear();
    if (open.size === 0) {
      hook?.disable();
      hook = undefined;
    }
  }

  /** @internal */
  add(asyncId: number, tracked: Tracked): void {
    if (open.has(this)) this.#alive.set(asyncId, tracked);
  }

  /** @internal */
  remove(asyncId: number): void {
    this.#alive.delete(asyncId);
  }
}

/** `"Timeout ×3, TCPWRAP"`: resource types with their counts, for failure messages. */
export function describeTypes(types: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const type of types) counts.set(type, (counts.get(type) ?? 0) + 1);
  return [...counts].map(([type, count]) => (count === 1 ? type : `${type} ×${count}`)).join(', ') || 'none';
}
