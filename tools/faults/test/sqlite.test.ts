import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { describeBackendFaults } from '../suite.js';

// No server: the worker processes share one database file in a fresh temporary directory.
const dir = mkdtempSync(join(tmpdir(), 'latchkey-faults-sqlite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

await describeBackendFaults('sqlite', { address: join(dir, 'faults.db'), unavailable: undefined });
