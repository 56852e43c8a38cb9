import { ValidationError, type Lease } from '@latchkey/core';

/** A lease won by {@link MongoBackend}; it remembers when it lapses (on this process's clock). */
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

/** @throws {ValidationError} unless `lease` looks like a lease (a key and a token). */
export function checkLease(lease: unknown): asserts lease is Lease {
  const candidate = lease as Partial<Lease> | null | undefined;
  if (typeof candidate?.key !== 'string' || typeof candidate.token !== 'string') {
    throw new ValidationError('MongoBackend: expected a lease returned by acquireLock.');
  }
}
