import {
  checkStoredEntries,
  checkStoredKey,
  checkStoredKeys,
  checkStoredValue,
  ProxyBackend,
  type BackendBatchWriteOptions,
  type BackendCapabilities,
  type BackendDeleteOptions,
  type BackendWriteOptions,
  type DeleteOutcome,
  type StoredValue,
  type WriteOutcome,
} from '@latchkey/core';
import { MemoryBackend } from '@latchkey/memory';
import { describeBackendConformance } from '../../src/index.js';

const MAX_KEY_BYTES = 120;
const MAX_VALUE_BYTES = 4096;

/**
 * MemoryBackend behind the backend kit's guards with declared key and value size limits, as a
 * backend with bounded keys and values calls them: the suite's direct size checks reach the
 * guards' bound branches, which MemoryBackend (unbounded) never takes.
 */
class GuardedMemoryBackend extends ProxyBackend {
  readonly #capabilities: BackendCapabilities;

  constructor() {
    super();
    const memory = new MemoryBackend();
    this.wrap(memory);
    this.#capabilities = Object.freeze({ ...memory.capabilities, maxKeyBytes: MAX_KEY_BYTES, maxValueBytes: MAX_VALUE_BYTES });
  }

  override get capabilities(): BackendCapabilities {
    return this.#capabilities;
  }

  override async get(key: string): Promise<StoredValue | undefined> {
    checkStoredKey(key, MAX_KEY_BYTES);
    return super.get(key);
  }

  override async getMany(keys: readonly string[]): Promise<(StoredValue | undefined)[]> {
    checkStoredKeys(keys, MAX_KEY_BYTES);
    return super.getMany(keys);
  }

  override async set(key: string, value: StoredValue, options?: BackendWriteOptions): Promise<WriteOutcome> {
    checkStoredKey(key, MAX_KEY_BYTES);
    checkStoredValue(value, MAX_VALUE_BYTES, key);
    return super.set(key, value, options);
  }

  override async setMany(entries: readonly (readonly [string, StoredValue])[], options?: BackendBatchWriteOptions): Promise<void> {
    checkStoredEntries(entries, MAX_VALUE_BYTES, MAX_KEY_BYTES);
    return super.setMany(entries, options);
  }

  override async delete(key: string, options?: BackendDeleteOptions): Promise<DeleteOutcome> {
    checkStoredKey(key, MAX_KEY_BYTES);
    return super.delete(key, options);
  }

  override async deleteMany(keys: readonly string[]): Promise<void> {
    checkStoredKeys(keys, MAX_KEY_BYTES);
    return super.deleteMany(keys);
  }
}

describeBackendConformance('MemoryBackend behind the kit guards with size limits', {
  create: () => new GuardedMemoryBackend(),
  only: ['data', 'bad-input'],
});
