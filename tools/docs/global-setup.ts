// Starts the servers the README blocks read addresses of (and only those), for docs.test.ts.
import { createGlobalSetup } from '@latchkey/test-servers';
import type { TestProject } from 'vitest/node';
import { programOf, collectBlocks } from './programs.js';
import { kindsNeeded } from './services.js';

export default function setup(project: TestProject): Promise<() => Promise<void>> {
  const codes = collectBlocks().flatMap((block) => (block.kind === 'typecheck-only' ? [] : [programOf(block).code]));
  return createGlobalSetup(kindsNeeded(codes))(project);
}
