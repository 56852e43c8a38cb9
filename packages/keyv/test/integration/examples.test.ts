// The README's examples are these files (tools/docs keeps the README's copies identical to them):
// this test runs each against the test Redis and checks what it prints.
import { requireService } from '@latchkey/test-servers';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';

const url = inject('redisUrl');
describe.runIf(requireService('the keyv examples', url, inject('redisUnavailable')))('the examples, run', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });

  /** Runs the example (a module with top-level await) and resolves what it printed. */
  async function run(path: string): Promise<unknown[][]> {
    vi.stubEnv('REDIS_URL', url as string);
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const error = vi.spyOn(console, 'error');
    await import(path);
    expect(error).not.toHaveBeenCalled();
    return log.mock.calls;
  }

  it('examples/keyv.ts stores a session with its TTL in the store', async () => {
    const printed = await run('../../examples/keyv.js');
    expect(printed).toHaveLength(2);
    expect(printed[0]).toEqual([{ user: 'alice', roles: ['admin'] }]);
    const ttl = printed[1]?.[0];
    expect(typeof ttl).toBe('number');
    expect(ttl).toBeGreaterThan(14 * 60_000);
    expect(ttl).toBeLessThanOrEqual(15 * 60_000);
  });

  it('examples/cache-manager.ts renders once and serves the page from either tier', async () => {
    const page = '<h1>/about</h1><p>render 1</p>';
    expect(await run('../../examples/cache-manager.js')).toEqual([[page], [page], [page]]);
  });
});
