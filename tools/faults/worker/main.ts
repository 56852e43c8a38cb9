/**
 * Entry point of a forked fault-suite worker, run with `node --import tsx` and `@latchkey/*`
 * mapped to package sources by worker/tsconfig.json (see cluster.ts).
 *
 * @module
 */
import { createBackend } from '../backends.js';
import { createCommands } from './commands.js';
import { serve, unhandledRejections } from './serve.js';

serve(
  createCommands({
    backend: (target) => createBackend(target),
    proxies: () => [],
    unhandledRejections,
  }),
);
