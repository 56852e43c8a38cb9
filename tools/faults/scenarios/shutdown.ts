/**
 * After every scenario: no worker saw an unhandled rejection, and every worker process exits
 * by itself once its store is closed and its IPC channel is gone (nothing — no socket, no
 * timer — keeps it alive).
 *
 * @module
 */
import { describe, expect, it } from 'vitest';
import { record } from '../stats.js';
import type { SuiteContext } from '../context.js';

/** Registers the final shutdown check of the main workers. */
export function defineShutdownTests(context: SuiteContext): void {
  describe('shutdown', () => {
    it('leaves no unhandled rejection, and every worker process exits by itself after close', { timeout: 30_000 }, async () => {
      const reports = await context.cluster().shutdown();
      const closed = reports.filter((r) => !r.crashed);
      record(context.kind, 'shutdown', {
        workers: closed.length,
        crashedOnPurpose: reports.length - closed.length,
        exits: closed.map((r) => r.exit),
        unhandledRejections: closed.flatMap((r) => r.unhandledRejections),
      });
      expect(closed.flatMap((r) => r.unhandledRejections)).toEqual([]);
      expect(closed.filter((r) => !r.exitedByItself).map((r) => r.exit)).toEqual([]);
    });
  });
}
