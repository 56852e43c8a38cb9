import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { suiteJson } from '../harness/index.js';
import { KNOWN_SUITES, loadResults } from '../report/load.js';
import { suiteResult } from './fixtures.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function folder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-bench-load-'));
  dirs.push(dir);
  return dir;
}

describe('loadResults', () => {
  it('reads the known suites only, not copies of results kept under other names', () => {
    const dir = folder();
    writeFileSync(join(dir, 'redis.json'), suiteJson(suiteResult('redis', [])));
    writeFileSync(join(dir, 'cross-process-after.json'), suiteJson(suiteResult('redis', [])));
    writeFileSync(join(dir, 'notes.json'), '{"not": "a suite"}');
    const loaded = loadResults(dir);
    expect(loaded.map((s) => s.name)).toEqual(KNOWN_SUITES);
    expect(loaded.find((s) => s.name === 'redis')?.kind).toBe('ok');
    expect(loaded.filter((s) => s.kind === 'unreadable')).toEqual([]);
  });

  it('still says when a known suite’s file holds another suite', () => {
    const dir = folder();
    writeFileSync(join(dir, 'mongo.json'), suiteJson(suiteResult('redis', [])));
    const mongo = loadResults(dir).find((s) => s.name === 'mongo');
    expect(mongo?.kind).toBe('unreadable');
  });

  it('fails for a folder that does not exist', () => {
    expect(() => loadResults(join(folder(), 'absent'))).toThrow();
  });
});
