/** Process warnings of backends: one code per kind of report, the same on every backend. */

import type { Lease } from '../backend.js';

/**
 * The `code` of the process warning emitted when a backend could not give back a lease
 * nobody holds any more (won after its waiter left, held at `close()`, or taken by an attempt
 * whose answer was lost). The lease then lapses by itself; one that never lapses stays until
 * its key's lock is removed by hand, which is why it is reported.
 */
export const GIVE_BACK_FAILED_WARNING = 'LATCHKEY_GIVE_BACK_FAILED';

/**
 * Reports, once, that `backendName` could not give back `lease` (see
 * {@link GIVE_BACK_FAILED_WARNING}). Listen with `process.on('warning', …)`.
 */
export function reportGiveBackFailure(backendName: string, lease: Pick<Lease, 'key'>, error: unknown): void {
  const detail = error instanceof Error ? error.message : String(error);
  process.emitWarning(`latchkey: ${backendName} could not give back its lease on "${lease.key}": ${detail}`, {
    code: GIVE_BACK_FAILED_WARNING,
    detail: 'The lease lapses by itself at the end of its term; a lease without a term stays until removed.',
  });
}
