// The README's examples are these files: this test runs each against the test Redis and checks
// what it prints, and keeps the README's copies identical to the files.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireService } from '@latchkey/test-servers';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';

const packageDir = join(import.meta.dirname, '../..');
const read = (path: string): string => readFileSync(join(packageDir, path), 'utf8');

/** The fenced ```ts block right after each `<!-- include: <path> -->` of the README. */
function includedBlocks(path: string): string[] {
  const readme = read('README.md');
  const marker = `<!-- include: ${path} -->`;
  const blocks: string[] = [];
  for (let at = readme.indexOf(marker); at >= 0; at = readme.indexOf(marker, at + marker.length)) {
    const match = /^\s*```ts\n([\s\S]*?)\n```/.exec(readme.slice(at + marker.length));
    if (match?.[1] !== undefined) blocks.push(match[1]);
  }
  return blocks;
}

describe('the README', () => {
  for (const path of ['examples/keyv.ts', 'examples/cache-manager.ts']) {
    it(`shows ${path} verbatim, once`, () => {
      expect(includedBlocks(path)).toEqual([read(path).trimEnd()]);
    });
  }
});

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
