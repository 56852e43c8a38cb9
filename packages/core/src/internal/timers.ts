/**
 * The longest delay `setTimeout` honours: Node fires any longer delay after 1 ms instead
 * (with a TimeoutOverflowWarning), which would turn a 30-day wait into an instant timeout.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/** A delay safe to pass to `setTimeout`: clamped to `[0, MAX_TIMER_MS]`. */
export function timerDelay(ms: number): number {
  return Math.min(MAX_TIMER_MS, Math.max(0, ms));
}
