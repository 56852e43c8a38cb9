/**
 * The README's example is examples/tokens.ts (tools/docs keeps the two identical): this test runs
 * the file, as a user would (through the built package), on a fresh database file.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../support/files.js';

const EXAMPLE = 'examples/tokens.ts';
const packageDir = fileURLToPath(new URL('../../', import.meta.url));
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

describe('the README example', () => {
  const dir = tempDir('readme');

  it('stores the token under the lock in the file, reads it back and exits; a second run adds to it', async () => {
    const filename = join(dir, 'tokens.db');
    const run = promisify(execFile);
    const once = () =>
      run(process.execPath, ['--import', TSX_LOADER, EXAMPLE], {
        cwd: packageDir,
        // Plain output whatever the test runner sets (vitest's workers set FORCE_COLOR).
        env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: undefined, TOKENS_DB: filename },
        timeout: 60_000,
      });
    const first = await once();
    expect(first.stdout, `stderr: ${first.stderr}`).toBe("[ 'abc' ]\n");
    const second = await once();
    expect(second.stdout, `stderr: ${second.stderr}`).toBe("[ 'abc', 'abc' ]\n");
    const db = new Database(filename, { readonly: true });
    try {
      const row = db.prepare('SELECT lock_token FROM latchkey').get() as { lock_token: string | null };
      // Both runs gave their lock back.
      expect(row.lock_token).toBeNull();
    } finally {
      db.close();
    }
  }, 120_000);
});
