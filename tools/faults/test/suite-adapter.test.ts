// The suite's own wiring: an adapter that does not import fails describeBackendFaults under
// LATCHKEY_REQUIRE_SERVICES=1 (require-adapter.test.ts covers the decision itself).
import { expect, it, vi } from 'vitest';
import type * as Backends from '../backends.js';
import { describeBackendFaults } from '../suite.js';

vi.mock('../backends.js', async (importOriginal) => {
  const actual = await importOriginal<typeof Backends>();
  return {
    ...actual,
    adapterStatus: () => actual.adapterSourceStatus({ packageName: '@latchkey/no-such-adapter', exportName: 'RedisBackend' }),
  };
});

it('with LATCHKEY_REQUIRE_SERVICES=1, an adapter that does not import fails the suite instead of skipping it', async () => {
  vi.stubEnv('LATCHKEY_REQUIRE_SERVICES', '1');
  try {
    await expect(describeBackendFaults('redis', { address: 'redis://127.0.0.1:1', unavailable: undefined })).rejects.toThrow(
      /^redis faults: the adapter is required .* @latchkey\/no-such-adapter cannot be loaded/,
    );
  } finally {
    vi.unstubAllEnvs();
  }
});
