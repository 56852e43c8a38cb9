/**
 * The `ProxyBackend` the fault suite adds of its own. (Scenarios that record or count backend
 * calls use `RecordingProxy` from `@latchkey/conformance`.)
 *
 * @module
 */
import { ProxyBackend } from '@latchkey/core';

/** Keeps the backend behind it open when the store closes (for a backend several stores share). */
export class SharedBackendProxy extends ProxyBackend {
  override close(): Promise<void> {
    return Promise.resolve();
  }
}
