/**
 * The README's example is examples/tokens.ts (tools/docs keeps the two identical): this test runs
 * the file, as a user would (through the built package), against the test server.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { admin, closeAll, postgresAvailable, postgresUrl } from '../support/postgres.js';

const EXAMPLE = 'examples/tokens.ts';
const packageDir = fileURLToPath(new URL('../../', import.meta.url));
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

describe('the README example', () => {
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
        // Plain output whatever the test runner sets (vitest's workers set FORCE_COLOR).
        env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: undefined, DATABASE_URL: postgresUrl as string },
        timeout: 60_000,
      });
      expect(stdout, `stderr: ${stderr}`).toBe("[ 'abc' ]\n");
      const rows = await admin().query<{ n: string }>('SELECT count(*) AS n FROM tokens WHERE value IS NOT NULL');
      expect(rows.rows[0]?.n).toBe('1');
    }, 90_000);
  });
});
