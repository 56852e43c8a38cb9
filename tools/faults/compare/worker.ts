/**
 * Entry point of a forked comparison worker (see compare/run.ts).
 *
 * @module
 */
import { serve } from '../worker/serve.js';
import { createCompareCommands } from './commands.js';

serve(createCompareCommands());
