import { ProxyBackend, type BackendBatchWriteOptions, type BackendWriteOptions, type StoredValue, type WriteOutcome } from '@latchkey/core';

/** The checks' recorder is the public one, so a check proves what users can prove too. */
export { RecordingProxy, type RecordedCall } from '../recording-proxy.js';

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
