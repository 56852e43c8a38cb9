#!/usr/bin/env node
// The `latchkey-conformance` command: runs the built CLI (dist/cli.js).
//
// This file is committed, and `bin` names it rather than dist/cli.js, because npm links a
// workspace's command at install time only when the file exists then: on a fresh clone of the
// repository dist/ does not exist until `npm run build`, and `npx latchkey-conformance` would go
// looking for a package on the registry instead. A published package always has dist/.
import { existsSync } from 'node:fs';
import process from 'node:process';
import { URL } from 'node:url';

const cli = new URL('../dist/cli.js', import.meta.url);

if (existsSync(cli)) {
  await import(cli.href);
} else {
  process.stderr.write(
    'latchkey-conformance: the command is not built yet (no dist/cli.js in @latchkey/conformance).\n' +
      'Run `npm run build` at the repository root, then try again.\n',
  );
  // 2, as the CLI uses for problems that are not check failures.
  process.exitCode = 2;
}
