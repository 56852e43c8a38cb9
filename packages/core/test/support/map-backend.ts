import type { Backend, BackendCapabilities, BackendWriteOptions, DeleteOutcome, StoredValue, WriteOutcome } from '../../src/index.js';

/**
 * A minimal backend without locks of its own (the core adds an in-process lock table), with
 * call counters so tests can prove what reached the backend.
 */
export class MapBackend implements Backend {
  readonly capabilities: BackendCapabilities;
  readonly data = new Map<string, { value: Uint8Array; expiresAt: number }>();
  readonly calls: string[] = [];
  closed = 0;

  constructor(capabilities: Partial<BackendCapabilities> = {}) {
    this.capabilities = {
      lockScope: 'in-process',
      atomicLeaseWrites: false,
      fencingTokens: true,
      ttlResolutionMs: 1,
      minLeaseMs: 1,
      mayEvict: false,
      ...capabilities,
    };
  }

  async get(key: string): Promise<StoredValue | undefined> {
    this.calls.push(`get ${key}`);
    return this.#read(key);
  }

  async getMany(keys: readonly string[]): Promise<(StoredValue | undefined)[]> {
    this.calls.push(`getMany ${keys.join(',')}`);
    return keys.map((key) => this.#read(key));
  }

  async set(key: string, value: StoredValue, options: BackendWriteOptions = {}): Promise<WriteOutcome> {
    this.calls.push(`set ${key}`);
    this.data.set(key, { value: value.slice(), expiresAt: options.expiresAt ?? Infinity });
    return 'written';
  }

  async setMany(entries: readonly (readonly [string, StoredValue])[], options: { expiresAt?: number } = {}): Promise<void> {
    this.calls.push(`setMany ${entries.map(([key]) => key).join(',')}`);
    for (const [key, value] of entries) this.data.set(key, { value: value.slice(), expiresAt: options.expiresAt ?? Infinity });
  }

  async delete(key: string): Promise<DeleteOutcome> {
    this.calls.push(`delete ${key}`);
    const present = this.#read(key) !== undefined;
    this.data.delete(key);
    return present ? 'deleted' : 'missing';
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    this.calls.push(`deleteMany ${keys.join(',')}`);
    for (const key of keys) this.data.delete(key);
  }

  async close(): Promise<void> {
    this.closed += 1;
  }

  #read(key: string): Uint8Array | undefined {
    const entry = this.data.get(key);
    if (entry === undefined || entry.expiresAt <= Date.now()) return undefined;
    return entry.value.slice();
  }
}

let counter = 0;
/** A store name no other test uses. */
export function uniqueName(prefix = 'store'): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
