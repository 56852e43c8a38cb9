/**
 * The libraries a Redis user would pick instead of latchkey, behind one small interface so
 * the comparison scenarios run the same steps on each: latchkey's `RedisBackend`, redlock
 * (single instance), redis-semaphore's `Mutex`, and keyv (which has no locks at all).
 *
 * Each lock holder writes its data the way that library's users do: latchkey with a locked
 * `set` (the server checks the lease with the write); redlock and redis-semaphore with a plain
 * `SET` guarded by the holder's own check of its lock; keyv with a plain `set`.
 *
 * @module
 */
import { RecordingProxy } from '@latchkey/conformance';
import { KeyValueStore, LatchkeyError, type KeyValueStoreLock, type Lease } from '@latchkey/core';
import KeyvRedis from '@keyv/redis';
import { Redis } from 'ioredis';
import Keyv from 'keyv';
import Redlock from 'redlock';
import { Mutex } from 'redis-semaphore';
import { createBackend } from '../backends.js';
import { epochNow, sleep } from '../worker/outcome.js';

/** The compared libraries. */
export type ContenderName = 'latchkey' | 'redlock' | 'redis-semaphore' | 'keyv';

/** Every contender, in report order. */
export const CONTENDERS: readonly ContenderName[] = ['latchkey', 'redlock', 'redis-semaphore', 'keyv'];

/** What a write under a lock did. */
export type WriteVerdict = 'accepted' | 'refused';

/** A held lock of some library. */
export interface HeldLock {
  /** The holder's own check that it still holds the lock (what careful user code does before writing). */
  stillValid(): boolean;
  /** The library's normal locked write (with whatever checks the library makes). */
  write(value: string): Promise<WriteVerdict>;
  /**
   * The write as it reaches the server once the holder's checks have passed — what happens
   * when the holder is paused right after checking. latchkey: the lease-conditional write;
   * the others: the plain `SET`.
   */
  writeAfterCheck(value: string): Promise<WriteVerdict>;
  /** When the library told the holder the lock was lost (autoExtend only), epoch ms. */
  lostAt(): number | undefined;
  release(): Promise<void>;
}

/** Options of {@link Contender.acquire}. */
export interface ContenderAcquireOptions {
  readonly leaseMs: number;
  readonly waitMs: number;
  /** Keep the lock alive (latchkey autoExtend, redlock `using`, redis-semaphore refresh). */
  readonly autoExtend?: boolean;
}

/** One compared library, connected to one Redis. */
export interface Contender {
  readonly name: ContenderName;
  /** False for keyv: lock scenarios do not apply. */
  readonly hasLocks: boolean;
  /** Takes the lock of `key`, waiting up to `waitMs`. @throws when the wait runs out. */
  acquire(key: string, options: ContenderAcquireOptions): Promise<HeldLock>;
  /** The stored value of `key`. */
  read(key: string): Promise<string | undefined>;
  /** Unconditional write (keyv's only kind). */
  writeUnlocked(key: string, value: string): Promise<void>;
  close(): Promise<void>;
}

/** Connects contender `name` to the Redis at `url`, its keys under `namespace`. */
export async function connectContender(name: ContenderName, url: string, namespace: string): Promise<Contender> {
  switch (name) {
    case 'latchkey':
      return LatchkeyContender.connect(url, namespace);
    case 'redlock':
      return new RedlockContender(url, namespace);
    case 'redis-semaphore':
      return new SemaphoreContender(url, namespace);
    case 'keyv':
      return new KeyvContender(url, namespace);
  }
}

class LatchkeyContender implements Contender {
  readonly name = 'latchkey';
  readonly hasLocks = true;

  private constructor(
    private readonly store: KeyValueStore,
    private readonly recorder: RecordingProxy,
  ) {}

  static async connect(url: string, namespace: string): Promise<LatchkeyContender> {
    const backend = await createBackend({ kind: 'redis', address: url, namespace, operationTimeoutMs: 5000 });
    const recorder = new RecordingProxy();
    const store = new KeyValueStore(`compare-${process.pid}-${namespace}`);
    await store.configure(backend, { proxies: [recorder], lockSafetyWindowMs: 50, operationTimeoutMs: 10_000 });
    return new LatchkeyContender(store, recorder);
  }

  async acquire(key: string, options: ContenderAcquireOptions): Promise<HeldLock> {
    const lock = this.store.getLock(key, { lockTimeoutMs: options.leaseMs, autoExtend: options.autoExtend === true });
    await lock.acquire({ waitMs: options.waitMs });
    const lease = this.recorder.lastLease;
    let lostAt: number | undefined;
    lock.signal.addEventListener('abort', () => (lostAt = epochNow()), { once: true });
    return new LatchkeyLock(this.store, this.recorder, key, lock, lease, () => (lock.active ? lostAt : undefined));
  }

  async read(key: string): Promise<string | undefined> {
    return this.store.get<string>(key).catch((error: unknown) => {
      if (error instanceof LatchkeyError && error.code === 'NOT_FOUND') return undefined;
      throw error;
    });
  }

  writeUnlocked(key: string, value: string): Promise<void> {
    return this.store.set(key, value);
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

class LatchkeyLock implements HeldLock {
  constructor(
    private readonly store: KeyValueStore,
    private readonly recorder: RecordingProxy,
    private readonly key: string,
    private readonly lock: KeyValueStoreLock,
    private readonly lease: Lease | undefined,
    readonly lostAt: () => number | undefined,
  ) {}

  stillValid(): boolean {
    return this.lock.active && !this.lock.expired;
  }

  async write(value: string): Promise<WriteVerdict> {
    try {
      await this.store.set(this.key, value, { lock: this.lock });
      return 'accepted';
    } catch (error) {
      if (error instanceof LatchkeyError && error.code === 'LOCK_TIMEOUT') return 'refused';
      throw error;
    }
  }

  async writeAfterCheck(): Promise<WriteVerdict> {
    // The second half of store.set: the bytes of this holder's last write, sent with its lease.
    const lease = this.lease;
    const bytes = lease === undefined ? undefined : this.recorder.lastSetValue(lease.key);
    if (lease === undefined || bytes === undefined) throw new Error('writeAfterCheck needs an earlier write by this holder');
    return (await this.recorder.set(lease.key, bytes, { lease })) === 'written' ? 'accepted' : 'refused';
  }

  release(): Promise<void> {
    return this.lock.release();
  }
}

/** A Redis client that fails calls instead of queueing them forever while disconnected. */
function redisClient(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: true, lazyConnect: false });
}

class RedlockContender implements Contender {
  readonly name = 'redlock';
  readonly hasLocks = true;
  readonly #redis: Redis;
  readonly #redlock: Redlock;
  readonly #namespace: string;

  constructor(url: string, namespace: string) {
    this.#redis = redisClient(url);
    // redlock polls: retry every ~10 ms (plus jitter) for as long as the caller waits.
    this.#redlock = new Redlock([this.#redis], { retryDelay: 10, retryJitter: 10, driftFactor: 0.01, automaticExtensionThreshold: 500 });
    this.#redlock.on('error', () => undefined);
    this.#namespace = namespace;
  }

  async acquire(key: string, options: ContenderAcquireOptions): Promise<HeldLock> {
    const resource = `${this.#namespace}:lock:${key}`;
    const retryCount = Math.max(0, Math.ceil(options.waitMs / 15));
    const dataKey = this.#dataKey(key);
    if (options.autoExtend !== true) {
      const lock = await this.#redlock.acquire([resource], options.leaseMs, { retryCount });
      return new RedlockHeld(
        this.#redis,
        dataKey,
        () => Date.now() < lock.expiration,
        () => undefined,
        () => lock.release().then(() => undefined),
      );
    }
    // redlock's automatic extension lives inside `using`: hold it open until released.
    let lostAt: number | undefined;
    let finish: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const acquired = new Promise<void>((resolve, reject) => {
      this.#redlock
        .using([resource], options.leaseMs, { retryCount }, async (signal) => {
          signal.addEventListener('abort', () => (lostAt = epochNow()), { once: true });
          resolve();
          await done;
        })
        .catch(reject);
    });
    await acquired;
    return new RedlockHeld(
      this.#redis,
      dataKey,
      () => lostAt === undefined,
      () => lostAt,
      async () => finish(),
    );
  }

  #dataKey(key: string): string {
    return `${this.#namespace}:data:${key}`;
  }

  async read(key: string): Promise<string | undefined> {
    return (await this.#redis.get(this.#dataKey(key))) ?? undefined;
  }

  async writeUnlocked(key: string, value: string): Promise<void> {
    await this.#redis.set(this.#dataKey(key), value);
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}

class RedlockHeld implements HeldLock {
  constructor(
    private readonly redis: Redis,
    private readonly dataKey: string,
    private readonly valid: () => boolean,
    readonly lostAt: () => number | undefined,
    readonly release: () => Promise<void>,
  ) {}

  stillValid(): boolean {
    return this.valid();
  }

  async write(value: string): Promise<WriteVerdict> {
    if (!this.stillValid()) return 'refused';
    return this.writeAfterCheck(value);
  }

  async writeAfterCheck(value: string): Promise<WriteVerdict> {
    await this.redis.set(this.dataKey, value);
    return 'accepted';
  }
}

class SemaphoreContender implements Contender {
  readonly name = 'redis-semaphore';
  readonly hasLocks = true;
  readonly #redis: Redis;
  readonly #namespace: string;

  constructor(url: string, namespace: string) {
    this.#redis = redisClient(url);
    this.#namespace = namespace;
  }

  async acquire(key: string, options: ContenderAcquireOptions): Promise<HeldLock> {
    let lostAt: number | undefined;
    const mutex = new Mutex(this.#redis, `${this.#namespace}:lock:${key}`, {
      lockTimeout: options.leaseMs,
      acquireTimeout: options.waitMs,
      retryInterval: 10,
      // Without autoExtend: a fixed lease, as the other libraries get.
      refreshInterval: options.autoExtend === true ? Math.floor(options.leaseMs / 3) : 0,
      onLockLost: () => {
        lostAt = epochNow();
      },
    });
    await mutex.acquire();
    const dataKey = `${this.#namespace}:data:${key}`;
    const redis = this.#redis;
    return {
      stillValid: () => mutex.isAcquired && lostAt === undefined,
      async write(value) {
        if (!mutex.isAcquired || lostAt !== undefined) return 'refused';
        await redis.set(dataKey, value);
        return 'accepted';
      },
      async writeAfterCheck(value) {
        await redis.set(dataKey, value);
        return 'accepted';
      },
      lostAt: () => lostAt,
      release: () => mutex.release(),
    };
  }

  async read(key: string): Promise<string | undefined> {
    return (await this.#redis.get(`${this.#namespace}:data:${key}`)) ?? undefined;
  }

  async writeUnlocked(key: string, value: string): Promise<void> {
    await this.#redis.set(`${this.#namespace}:data:${key}`, value);
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}

class KeyvContender implements Contender {
  readonly name = 'keyv';
  readonly hasLocks = false;
  readonly #keyv: Keyv<string>;

  constructor(url: string, namespace: string) {
    this.#keyv = new Keyv<string>({ store: new KeyvRedis(url), namespace });
  }

  acquire(): Promise<HeldLock> {
    return Promise.reject(new Error('keyv has no locks'));
  }

  read(key: string): Promise<string | undefined> {
    return this.#keyv.get(key);
  }

  async writeUnlocked(key: string, value: string): Promise<void> {
    await this.#keyv.set(key, value);
  }

  async close(): Promise<void> {
    await this.#keyv.disconnect();
    // @keyv/redis's client may still be closing its socket.
    await sleep(10);
  }
}
