import { chmodSync, mkdirSync, openSync, readFileSync, closeSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BackendError, BackendUnavailableError, type LatchkeyError } from '@latchkey/core';
import { describe, expect, it } from 'vitest';
import { SqliteBackend } from '../../src/index.js';
import { startChild } from '../support/children.js';
import { bytes, tempDir, text } from '../support/files.js';
import { rawConnection } from '../support/raw.js';

const dir = tempDir('bad-files');
// mkdtemp makes it 0700: the unprivileged child below must be able to walk in.
chmodSync(dir, 0o755);

/** The rejection of `call`, which must reject. */
async function rejection(call: Promise<unknown>): Promise<LatchkeyError & { cause?: { code?: string } }> {
  const outcome = await call.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error(`resolved ${String(outcome.value)} instead of rejecting`);
  return outcome.error as LatchkeyError & { cause?: { code?: string } };
}

describe('a file that is not a SQLite database', () => {
  it('fails every call with BackendError (SQLITE_NOTADB as cause) naming the file, and leaves the file as it was', async () => {
    const filename = join(dir, 'garbage.db');
    const garbage = Buffer.alloc(8192, 0x5a);
    writeFileSync(filename, garbage);
    const backend = new SqliteBackend({ filename });
    try {
      for (const call of [
        backend.get('k'),
        backend.set('k', bytes('v')),
        backend.deleteMany(['k']),
        backend.acquireLock('k', { leaseMs: 1000, waitMs: 0 }),
        backend.purgeExpired(),
      ]) {
        const error = await rejection(call);
        expect(error.constructor).toBe(BackendError);
        expect(error.cause?.code).toBe('SQLITE_NOTADB');
        expect(error.message).toContain(filename);
        expect(error.message).toContain('not a healthy SQLite database');
      }
      expect(readFileSync(filename).equals(garbage), 'the backend wrote into a file that is not its own').toBe(true);
    } finally {
      await backend.close();
    }
  });

  it('fails reads and writes of a database whose pages were overwritten with BackendError (SQLITE_CORRUPT as cause)', async () => {
    const filename = join(dir, 'corrupt.db');
    const writer = new SqliteBackend({ filename });
    await writer.setMany(Array.from({ length: 500 }, (_, i) => [`key-${i}`, new Uint8Array(200).fill(i % 256)] as const));
    await writer.close();
    // Pages 3 to 8 (the table's b-tree) become garbage; the header on page 1 stays valid.
    const fd = openSync(filename, 'r+');
    writeSync(fd, Buffer.alloc(4096 * 6, 0xff), 0, 4096 * 6, 4096 * 2);
    closeSync(fd);
    const backend = new SqliteBackend({ filename });
    try {
      for (const call of [
        backend.get('key-300'),
        backend.getMany(['key-1', 'key-499']),
        backend.set('key-1', bytes('v')),
        backend.purgeExpired(),
      ]) {
        const error = await rejection(call);
        expect(error.constructor).toBe(BackendError);
        expect(error.cause?.code).toBe('SQLITE_CORRUPT');
      }
    } finally {
      await backend.close();
    }
  });

  it('refuses a table of that name that is not a latchkey table, with BackendError listing its columns', async () => {
    const filename = join(dir, 'foreign-table.db');
    const raw = rawConnection(filename);
    raw.exec('CREATE TABLE latchkey (id INTEGER PRIMARY KEY, name TEXT)');
    raw.close();
    const backend = new SqliteBackend({ filename });
    try {
      const error = await rejection(backend.get('k'));
      expect(error.constructor).toBe(BackendError);
      expect(error.message).toContain('is not a latchkey table (columns: id, name;');
    } finally {
      await backend.close();
    }
  });
});

describe('a file that cannot be opened', () => {
  it('fails with BackendUnavailableError while its directory is missing, and works once it exists', async () => {
    const parent = join(dir, 'made-later');
    const backend = new SqliteBackend({ filename: join(parent, 'x.db') });
    try {
      const error = await rejection(backend.set('k', bytes('v')));
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect(error.message).toContain('directory does not exist');
      mkdirSync(parent);
      expect(await backend.set('k', bytes('v'))).toBe('written');
      expect(text(await backend.get('k'))).toBe('v');
    } finally {
      await backend.close();
    }
  });

  it('fails with BackendUnavailableError (SQLITE_CANTOPEN as cause) for a directory', async () => {
    const backend = new SqliteBackend({ filename: dir });
    try {
      const error = await rejection(backend.get('k'));
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect(error.cause?.code).toBe('SQLITE_CANTOPEN');
    } finally {
      await backend.close();
    }
  });
});

describe('read-only databases', () => {
  it('with readonly: true, reads and every write or lock call rejects with BackendError (SQLITE_READONLY), changing nothing', async () => {
    const filename = join(dir, 'readonly-option.db');
    const writer = new SqliteBackend({ filename });
    await writer.set('k', bytes('kept'));
    await writer.close();
    const backend = new SqliteBackend({ filename, readonly: true });
    try {
      expect(text(await backend.get('k'))).toBe('kept');
      expect((await backend.getMany(['k', 'missing'])).map(text)).toStrictEqual(['kept', undefined]);
      for (const call of [
        backend.set('k', bytes('changed')),
        backend.setMany([['k', bytes('changed')]]),
        backend.delete('k'),
        backend.deleteMany(['k']),
        backend.acquireLock('k', { leaseMs: 1000, waitMs: 0 }),
      ]) {
        const error = await rejection(call);
        expect(error.constructor).toBe(BackendError);
        expect(error.cause?.code).toBe('SQLITE_READONLY');
        expect(error.message).toContain('cannot be written');
      }
      expect(text(await backend.get('k'))).toBe('kept');
    } finally {
      await backend.close();
    }
  });

  it('with readonly: true, fails with BackendError for a file without the table and BackendUnavailableError for a missing file', async () => {
    const filename = join(dir, 'readonly-option.db');
    const other = new SqliteBackend({ filename, readonly: true, table: 'other' });
    const missing = new SqliteBackend({ filename: join(dir, 'never-made.db'), readonly: true });
    try {
      const noTable = await rejection(other.get('k'));
      expect(noTable.constructor).toBe(BackendError);
      expect(noTable.message).toContain('has no table "other"');
      const noFile = await rejection(missing.get('k'));
      expect(noFile).toBeInstanceOf(BackendUnavailableError);
      expect(noFile.cause?.code).toBe('SQLITE_CANTOPEN');
    } finally {
      await other.close();
      await missing.close();
    }
  });

  // Tests run as root here, and root writes through a mode-0444 file: a child process running as
  // `nobody` (uid 65534) meets the permissions for real. Run as another user, the child runs as that user.
  const asUnprivileged = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};

  it('in a process without write permission on a 0444 file, reads work and writes reject with BackendError (SQLITE_READONLY)', async () => {
    const folder = join(dir, 'unwritable-file');
    mkdirSync(folder, { mode: 0o777 });
    chmodSync(folder, 0o777);
    const filename = join(folder, 'x.db');
    const writer = new SqliteBackend({ filename });
    await writer.set('k', bytes('kept'));
    await writer.close();
    chmodSync(filename, 0o444);
    const child = await startChild('readonly-child.ts', [filename, 'default'], asUnprivileged).done;
    expect(child.code, child.stderr).toBe(0);
    const report = JSON.parse(child.stdout) as Record<string, string>;
    expect(report['get']).toBe('ok:kept');
    expect(report['set']).toMatch(/^BackendError:SQLITE_READONLY:.*cannot be written/);
    expect(report['acquireLock']).toMatch(/^BackendError:SQLITE_READONLY:/);
  });

  it('in a process without write permission on the file and its directory, every call rejects with BackendError (SQLITE_READONLY_DIRECTORY)', async () => {
    const folder = join(dir, 'unwritable-folder');
    mkdirSync(folder);
    const filename = join(folder, 'x.db');
    const writer = new SqliteBackend({ filename });
    await writer.set('k', bytes('kept'));
    await writer.close();
    chmodSync(filename, 0o444);
    chmodSync(folder, 0o555);
    try {
      // readonly: true too: a WAL database needs its -shm file beside it even to be read.
      for (const mode of ['default', 'readonly']) {
        const child = await startChild('readonly-child.ts', [filename, mode], asUnprivileged).done;
        expect(child.code, child.stderr).toBe(0);
        const report = JSON.parse(child.stdout) as Record<string, string>;
        for (const call of ['get', 'set', 'acquireLock'])
          expect(report[call], `${call} (${mode})`).toMatch(/^BackendError:SQLITE_READONLY_DIRECTORY:/);
      }
    } finally {
      chmodSync(folder, 0o755);
    }
  });
});
