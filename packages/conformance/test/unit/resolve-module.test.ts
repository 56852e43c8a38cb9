import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModuleNotFoundError, resolveModule } from '../../src/internal/runner.js';
import { fixturesDir } from '../support/run-cli.js';

describe('resolveModule', () => {
  it('resolves a path relative to the working directory to an absolute file', () => {
    expect(resolveModule('control.ts', fixturesDir)).toBe(join(fixturesDir, 'control.ts'));
    expect(resolveModule('./cli/create-throws.mjs', fixturesDir)).toBe(join(fixturesDir, 'cli', 'create-throws.mjs'));
  });

  it('keeps an absolute path', () => {
    const absolute = join(fixturesDir, 'control.ts');
    expect(resolveModule(absolute, '/')).toBe(absolute);
  });

  it('resolves a package name from the working directory', () => {
    expect(resolveModule('@latchkey/memory', fixturesDir)).toMatch(/packages[/\\]memory[/\\]dist[/\\]index\.js$/);
  });

  it('rejects a missing file or package with ModuleNotFoundError naming it', () => {
    expect(() => resolveModule('missing.mjs', fixturesDir)).toThrow(ModuleNotFoundError);
    expect(() => resolveModule('missing.mjs', fixturesDir)).toThrow('"missing.mjs"');
    expect(() => resolveModule('@latchkey/no-such-package', fixturesDir)).toThrow(ModuleNotFoundError);
  });
});
