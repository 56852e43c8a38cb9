import {
  ProxyBackend,
  type AcquireLockOptions,
  type BackendBatchWriteOptions,
  type BackendDeleteOptions,
  type BackendWriteOptions,
  type DeleteOutcome,
  type Lease,
  type StoredValue,
  type WriteOutcome,
} from '@latchkey/core';

/** One backend call as a proxy saw it. */
export interface RecordedCall {
  readonly method: string;
  readonly keys: readonly string[];
  readonly values: readonly StoredValue[];
}

/**
 * Records every call that passes through it (method, stored keys, encoded values) and every
 * lease the backend grants, so checks can prove what reached the backend — or that nothing did.
 */
export class RecordingProxy extends ProxyBackend {
  readonly calls: RecordedCall[] = [];
  readonly leases: Lease[] = [];

  /** Names of the recorded methods, in call order. */
  get methods(): string[] {
    return this.calls.map((call) => call.method);
  }

  #record(method: string, keys: readonly string[], values: readonly StoredValue[] = []): void {
    this.calls.push({ method, keys: [...keys], values: values.map((value) => value.slice()) });
  }

  override get(key: string): Promise<StoredValue | undefined> {
    this.#record('get', [key]);
    return super.get(key);
  }

  override getMany(keys: readonly string[]): Promise<(StoredValue | undefined)[]> {
    this.#record('getMany', keys);
    return super.getMany(keys);
  }

  override set(key: string, value: StoredValue, options?: BackendWriteOptions): Promise<WriteOutcome> {
    this.#record('set', [key], [value]);
    return super.set(key, value, options);
  }

  override setMany(entries: readonly (readonly [string, StoredValue])[], options?: BackendBatchWriteOptions): Promise<void> {
    this.#record(
      'setMany',
      entries.map(([key]) => key),
      entries.map(([, value]) => value),
    );
    return super.setMany(entries, options);
  }

  override delete(key: string, options?: BackendDeleteOptions): Promise<DeleteOutcome> {
    this.#record('delete', [key]);
    return super.delete(key, options);
  }

  override deleteMany(keys: readonly string[]): Promise<void> {
    this.#record('deleteMany', keys);
    return super.deleteMany(keys);
  }

  override async acquireLock(key: string, options: AcquireLockOptions): Promise<Lease | undefined> {
    this.#record('acquireLock', [key]);
    const lease = await super.acquireLock(key, options);
    if (lease !== undefined) this.leases.push(lease);
    return lease;
  }

  override releaseLock(lease: Lease): Promise<boolean> {
    this.#record('releaseLock', [lease.key]);
    return super.releaseLock(lease);
  }

  override extendLock(lease: Lease, leaseMs: number): Promise<boolean> {
    this.#record('extendLock', [lease.key]);
    return super.extendLock(lease, leaseMs);
  }

  override close(): Promise<void> {
    this.#record('close', []);
    return super.close();
  }

  /** The one lease granted so far. @throws {Error} unless exactly one was granted. */
  onlyLease(): Lease {
    const [lease, ...more] = this.leases;
    if (lease === undefined || more.length > 0) throw new Error(`expected exactly one granted lease, saw ${this.leases.length}`);
    return lease;
  }
}

/** Appends `<tag>.<method>` to a shared log for every data call (for chain-order checks). */
export class TaggingProxy extends ProxyBackend {
  constructor(
    readonly tag: string,
    readonly log: string[],
  ) {
    super();
  }

  override get(key: string): Promise<StoredValue | undefined> {
    this.log.push(`${this.tag}.get`);
    return super.get(key);
  }

  override set(key: string, value: StoredValue, options?: BackendWriteOptions): Promise<WriteOutcome> {
    this.log.push(`${this.tag}.set`);
    return super.set(key, value, options);
  }

  override close(): Promise<void> {
    this.log.push(`${this.tag}.close`);
    return super.close();
  }
}

/** A proxy that stores every value with each byte XOR-ed, and undoes it on read. */
export class ScramblingProxy extends ProxyBackend {
  static scramble(bytes: StoredValue): StoredValue {
    return bytes.map((byte) => byte ^ 0x5a);
  }

  override async get(key: string): Promise<StoredValue | undefined> {
    const bytes = await super.get(key);
    return bytes === undefined ? undefined : ScramblingProxy.scramble(bytes);
  }

  override async getMany(keys: readonly string[]): Promise<(StoredValue | undefined)[]> {
    const found = await super.getMany(keys);
    return found.map((bytes) => (bytes === undefined ? undefined : ScramblingProxy.scramble(bytes)));
  }

  override set(key: string, value: StoredValue, options?: BackendWriteOptions): Promise<WriteOutcome> {
    return super.set(key, ScramblingProxy.scramble(value), options);
  }

  override setMany(entries: readonly (readonly [string, StoredValue])[], options?: BackendBatchWriteOptions): Promise<void> {
    return super.setMany(
      entries.map(([key, value]) => [key, ScramblingProxy.scramble(value)] as const),
      options,
    );
  }
}
