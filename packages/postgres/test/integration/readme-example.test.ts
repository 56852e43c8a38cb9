/**
 * The README's example is examples/tokens.ts: this test keeps the two identical and runs the
 * file, as a user would (through the built package), against the test server.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { admin, closeAll, postgresAvailable, postgresUrl } from '../support/postgres.js';

const EXAMPLE = 'examples/tokens.ts';
const packageDir = fileURLToPath(new URL('../../', import.meta.url));
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** The fenced ```ts block right after `<!-- include: <path> -->` in `markdown`, if any. */
function includedBlock(markdown: string, path: string): string | undefined {
  const marker = `<!-- include: ${path} -->`;
  const at = markdown.indexOf(marker);
  if (at < 0) return undefined;
  return /^\s*```ts\n([\s\S]*?)\n```/.exec(markdown.slice(at + marker.length))?.[1];
}

describe('the README example', () => {
  it(`shows ${EXAMPLE} verbatim`, () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const example = readFileSync(new URL(`../../${EXAMPLE}`, import.meta.url), 'utf8');
    expect(includedBlock(readme, EXAMPLE), `a \`\`\`ts block after <!-- include: ${EXAMPLE} --> in README.md`).toBe(example.trimEnd());
  });

  describe.runIf(postgresAvailable('the README example'))('run against the test server', () => {
    afterAll(async () => {
      await admin().query('DROP TABLE IF EXISTS tokens');
      await closeAll();
    });

    it('stores the token under the lock, reads it back and exits', async () => {
      await admin().query('DROP TABLE IF EXISTS tokens');
      const run = promisify(execFile);
      const { stdout, stderr } = await run(process.execPath, ['--import', TSX_LOADER, EXAMPLE], {
        cwd: packageDir,
        env: { ...process.env, DATABASE_URL: postgresUrl as string },
        timeout: 60_000,
      });
      expect(stdout, `stderr: ${stderr}`).toBe("[ 'abc' ]\n");
      const rows = await admin().query<{ n: string }>('SELECT count(*) AS n FROM tokens WHERE value IS NOT NULL');
      expect(rows.rows[0]?.n).toBe('1');
    }, 90_000);
  });
});
