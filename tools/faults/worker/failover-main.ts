/**
 * Entry point of a forked failover worker (see scenarios/failover.ts).
 *
 * @module
 */
import { createFailoverCommands } from './failover-commands.js';
import { serve } from './serve.js';

serve(createFailoverCommands());
