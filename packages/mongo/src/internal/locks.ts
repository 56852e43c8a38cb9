/**
 * The server side of MongoBackend's locks: each attempt, release and renewal is one atomic
 * single-document command on the key's document (see the README's storage layout).
 */

import { randomUUID } from 'node:crypto';
import type { Collection } from 'mongodb';
import { type AttemptOutcome, type CallRunner, type Lease, type LockProtocol } from '@latchkey/core';
import { FIELD, NEVER, ONE, fenceOf, freeLockFilter, idFilter, leaseFilter } from './document.js';
import { isDuplicateKey } from './errors.js';

/** A lease won by MongoBackend; it remembers when it lapses (on this process's clock). */
export class MongoLease implements Lease {
  readonly key: string;
  readonly token: string;
  readonly fencingToken: bigint;
  readonly acquiredAt: number;
  /** Epoch ms (client clock) the server-side lease lapses at; `Infinity` when it never does. */
  expiresAt: number;

  constructor(key: string, token: string, fencingToken: bigint, acquiredAt: number, expiresAt: number) {
    this.key = key;
    this.token = token;
    this.fencingToken = fencingToken;
    this.acquiredAt = acquiredAt;
    this.expiresAt = expiresAt;
  }
}

/**
 * MongoBackend's {@link LockProtocol}: a `findOneAndUpdate` upsert that takes a free or lapsed
 * lock and increments the key's fence, an owner-checked `$unset` and an owner-checked renewal,
 * each under the backend's call deadline. Leases come back as {@link MongoLease}; any
 * well-formed lease is accepted back.
 */
export class MongoLocks implements LockProtocol {
  readonly #collection: Collection;
  readonly #calls: CallRunner;

  constructor(collection: Collection, calls: CallRunner) {
    this.#collection = collection;
    this.#calls = calls;
  }

  attempt(key: string, leaseMs: number, giveBack: (lease: Lease) => void): Promise<AttemptOutcome> {
    // One deadline for the whole attempt, its duplicate-key retry included.
    return this.#calls.run(
      'acquireLock',
      async (call) => {
        // A duplicate-key error means the document exists and its lock was not free when we
        // looked — or it was created between our match and our insert. One more try tells apart.
        for (let round = 0; round < 2; round++) {
          call.check();
          const token = randomUUID();
          const acquiredAt = performance.now();
          const now = Date.now();
          const expiresAt = leaseMs === 0 ? NEVER : new Date(now + leaseMs);
          try {
            const doc = await this.#collection.findOneAndUpdate(
              freeLockFilter(key, new Date(now)),
              { $set: { [FIELD.lock]: { token, expiresAt } }, $inc: { [FIELD.fence]: ONE }, $unset: { [FIELD.purgeable]: '' } },
              { upsert: true, returnDocument: 'after', useBigInt64: true },
            );
            if (doc !== null) {
              const lease = new MongoLease(key, token, fenceOf(doc), acquiredAt, leaseMs === 0 ? Infinity : expiresAt.getTime());
              return { lease };
            }
          } catch (error) {
            if (!isDuplicateKey(error)) throw error;
          }
        }
        return {};
      },
      {
        // Won after the attempt's deadline: nobody will hold it.
        onLate: ({ lease }) => {
          if (lease !== undefined) giveBack(lease);
        },
      },
    );
  }

  release(lease: Lease): Promise<boolean> {
    // Also the give-backs that close() sends: those run after the runner stopped taking calls.
    return this.#calls.run(
      'releaseLock',
      async () => {
        const result = await this.#collection.updateOne(
          { ...idFilter(lease.key), [FIELD.lockToken]: { $eq: lease.token } },
          { $unset: { [FIELD.lock]: '' } },
        );
        if (result.matchedCount === 0) return false;
        return lease instanceof MongoLease ? Date.now() < lease.expiresAt : true;
      },
      { evenIfClosed: true },
    );
  }

  extend(lease: Lease, leaseMs: number): Promise<boolean> {
    return this.#calls.run('extendLock', async () => {
      const now = Date.now();
      const expiresAt = leaseMs === 0 ? NEVER : new Date(now + leaseMs);
      const result = await this.#collection.updateOne(leaseFilter(lease.key, lease.token, new Date(now)), {
        $set: { [FIELD.lockExpiresAt]: expiresAt },
      });
      if (result.matchedCount === 0) return false;
      if (lease instanceof MongoLease) lease.expiresAt = leaseMs === 0 ? Infinity : expiresAt.getTime();
      return true;
    });
  }
}
