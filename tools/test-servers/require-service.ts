/**
 * Deciding, in a test file, whether a suite that needs a server runs.
 *
 * @module
 */
export type { ServiceKind, TestServicesContext } from './provided-context.js';

/** Whether `LATCHKEY_REQUIRE_SERVICES` asks for every service (CI sets it to 1). */
export function servicesRequired(): boolean {
  const v = process.env['LATCHKEY_REQUIRE_SERVICES'];
  return v === '1' || v === 'true';
}

/**
 * Whether a suite that needs a service should run. When the value is missing it prints
 * `skipping <suite>: <reason>` and returns false; with `LATCHKEY_REQUIRE_SERVICES=1` it
 * throws instead, so a missing service fails CI rather than skipping silently.
 *
 * @example
 * ```ts
 * const url = inject('redisUrl');
 * describe.runIf(requireService('RedisBackend', url, inject('redisUnavailable')))('RedisBackend', () => {
 *   // use url!
 * });
 * ```
 *
 * @param suite - Suite name for the message.
 * @param value - The injected value (URL, servers string or node list).
 * @param reason - The injected `…Unavailable` reason, if any.
 * @returns `true` when the value is present (non-empty).
 */
export function requireService<T>(suite: string, value: T | undefined, reason?: string): value is T {
  const present =
    value !== undefined && value !== null && !(typeof value === 'string' && value === '') && !(Array.isArray(value) && value.length === 0);
  if (present) return true;
  const why = reason ?? 'not provided (is its kind listed in createGlobalSetup?)';
  if (servicesRequired()) throw new Error(`${suite}: required service is missing (LATCHKEY_REQUIRE_SERVICES=1): ${why}`);
  console.warn(`skipping ${suite}: ${why}`);
  return false;
}
