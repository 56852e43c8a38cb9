import { join } from 'node:path';
import { describeBackendConformance } from '@latchkey/conformance';
import { SqliteBackend } from '../../src/index.js';
import { tempDir, uniqueTable } from '../support/files.js';

const filename = join(tempDir('conformance'), 'shared.db');

// Every backend on one file (a table each, so they stay apart), as processes sharing a cache
// file would be; the peer is a second connection to the same file and table.
describeBackendConformance('SqliteBackend on a file', {
  create: () => new SqliteBackend({ filename, table: uniqueTable() }),
  createPeer: (backend) => new SqliteBackend({ filename: backend.filename, table: backend.table }),
});
