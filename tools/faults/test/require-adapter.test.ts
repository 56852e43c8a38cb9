import { afterEach, describe, expect, it, vi } from 'vitest';
import { adapterSourceStatus, adapterStatus } from '../backends.js';
import { requireAdapter } from '../require-adapter.js';

const MISSING = { packageName: '@latchkey/no-such-adapter', exportName: 'NoSuchBackend' };

afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

describe('adapterSourceStatus', () => {
  it('reports a module that does not exist as unusable, naming it and the import error', async () => {
    const status = await adapterSourceStatus(MISSING);
    expect(status.ready).toBe(false);
    expect(status.ready === false && status.reason).toMatch(/^@latchkey\/no-such-adapter cannot be loaded: .*no-such-adapter/);
  });

  it('reports a module without the backend export as unusable', async () => {
    const status = await adapterSourceStatus({ packageName: '@latchkey/memory', exportName: 'NoSuchBackend' });
    expect(status).toEqual({ ready: false, reason: '@latchkey/memory does not export NoSuchBackend' });
  });

  it('reports a module that exports its backend class as ready', async () => {
    expect(await adapterSourceStatus({ packageName: '@latchkey/memory', exportName: 'MemoryBackend' })).toEqual({ ready: true });
    expect(await adapterStatus('memory')).toEqual({ ready: true });
  });
});

describe('requireAdapter', () => {
  it('with LATCHKEY_REQUIRE_SERVICES=1, fails the suite of an adapter that does not load', async () => {
    vi.stubEnv('LATCHKEY_REQUIRE_SERVICES', '1');
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const status = await adapterSourceStatus(MISSING);
    expect(() => requireAdapter('redis faults', status)).toThrow(
      /^redis faults: the adapter is required \(LATCHKEY_REQUIRE_SERVICES=1\) but unusable: @latchkey\/no-such-adapter cannot be loaded/,
    );
    expect(warn).not.toHaveBeenCalled();
  });

  it('without it, skips that suite and prints why', async () => {
    vi.stubEnv('LATCHKEY_REQUIRE_SERVICES', '');
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    expect(requireAdapter('redis faults', await adapterSourceStatus(MISSING))).toBe(false);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]?.[0]).toMatch(/^skipping redis faults: @latchkey\/no-such-adapter cannot be loaded: /);
  });

  it('runs the suite of an adapter that loads, whether or not services are required', () => {
    vi.stubEnv('LATCHKEY_REQUIRE_SERVICES', '1');
    expect(requireAdapter('memory faults', { ready: true })).toBe(true);
    vi.stubEnv('LATCHKEY_REQUIRE_SERVICES', '');
    expect(requireAdapter('memory faults', { ready: true })).toBe(true);
  });
});
