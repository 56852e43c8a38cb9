/**
 * Deciding whether the fault suite of an adapter that cannot be loaded skips or fails: the
 * adapter's counterpart of `requireService`, so a broken adapter build cannot turn CI's fault
 * run into a green row of skips.
 *
 * @module
 */
import { servicesRequired } from '@latchkey/test-servers';
import type { AdapterStatus } from './backends.js';

/**
 * Whether the suite of an adapter with `status` runs. When the adapter is unusable it prints
 * `skipping <suite>: <reason>` and returns false; with `LATCHKEY_REQUIRE_SERVICES=1` (as in
 * CI) it throws instead.
 *
 * @param suite - Suite name for the message.
 * @param status - What `adapterStatus` or `adapterSourceStatus` found.
 * @returns `true` when the adapter loaded and exports its backend.
 * @throws {Error} naming the reason, when the adapter is unusable and services are required.
 */
export function requireAdapter(suite: string, status: AdapterStatus): boolean {
  if (status.ready) return true;
  if (servicesRequired()) throw new Error(`${suite}: the adapter is required (LATCHKEY_REQUIRE_SERVICES=1) but unusable: ${status.reason}`);
  console.warn(`skipping ${suite}: ${status.reason}`);
  return false;
}
