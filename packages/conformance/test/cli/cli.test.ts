import { describe, expect, it } from 'vitest';
import { runCli } from '../support/run-cli.js';

describe.concurrent('latchkey-conformance', () => {
  it('passes the example MemoryBackend module with at least 120 checks and exits 0', async () => {
    const run = await runCli(['../../examples/memory-backend.mjs']);
    expect(run.report?.failed, run.stdout).toBe(0);
    expect(run.report?.passed).toBeGreaterThanOrEqual(120);
    expect(run.lastLine).toBe(`${run.report?.passed} passed, 0 failed`);
    expect(run.stdout).not.toContain('✗');
    expect(run.code).toBe(0);
    const results = run.report?.results ?? [];
    // No check name shows a value the backend did not declare.
    expect(results.filter((result) => /\bundefined\)/.test(result.name)).map((result) => result.name)).toStrictEqual([]);
    // Every check that ran has its duration in the report.
    const ran = results.filter((result) => result.state !== 'skipped');
    expect(ran.every((result) => typeof result.durationMs === 'number' && result.durationMs >= 0)).toBe(true);
    // A flaky pass (re-run after outside lag) is listed with its attempts, never silently.
    const flaky = results.filter((result) => result.flaky);
    expect(run.report?.flaky).toBe(flaky.length);
    expect(run.stdout.split('\n').filter((line) => line.startsWith('~ flaky: ')).length).toBe(flaky.length);
    expect(flaky.every((result) => (result.attempts?.length ?? 0) >= 2)).toBe(true);
  }, 180_000);

  it('shows progress on stderr: a line per group with its counts, after a character per check', async () => {
    const run = await runCli(['--only', 'data,bad-input', '../../examples/memory-backend.mjs']);
    const groupLines = run.stderr.split('\n').filter((line) => /^[✓✗] \.\.\/\.\.\/examples\/memory-backend\.mjs > /.test(line));
    expect(groupLines.length, run.stderr).toBe(2);
    expect(groupLines[0]).toMatch(/ > (data|bad-input): .*: \d+ passed, 0 failed(, \d+ not applicable)? \(\d+\.\d s\)$/);
    expect(run.stderr).toMatch(/[.~F-]{10,}/);
    expect(run.code).toBe(0);
  }, 180_000);

  it('passes the backend example of the core README (examples/backend/conformance.ts) with 0 failed and exits 0', async () => {
    const module = '../../../../examples/backend/conformance.ts';
    const run = await runCli([module]);
    expect(run.report?.failed, run.stdout).toBe(0);
    expect(run.report?.passed).toBeGreaterThanOrEqual(250);
    expect(run.report?.results.every((result) => result.module === module)).toBe(true);
    // Skipped only where a check cannot apply to it, each with its reason.
    const skipped = run.report?.results.filter((result) => result.state === 'skipped') ?? [];
    expect(skipped.every((result) => result.name.includes(' — not applicable: '))).toBe(true);
    expect(run.lastLine).toBe(`${run.report?.passed} passed, 0 failed`);
    expect(run.code).toBe(0);
  }, 180_000);

  it('runs only the groups named with --only, for every module given, and prints a line for each not-applicable check with its reason', async () => {
    const run = await runCli(['--only', 'data,bad-input', '../../examples/memory-backend.mjs', 'control.ts']);
    const results = run.report?.results ?? [];
    expect(new Set(results.map((result) => result.module))).toStrictEqual(new Set(['../../examples/memory-backend.mjs', 'control.ts']));
    expect(results.every((result) => result.name.startsWith('data: ') || result.name.startsWith('bad-input: '))).toBe(true);
    expect(run.report?.passed).toBeGreaterThan(80);
    const notApplicable = run.stdout.split('\n').filter((line) => line.startsWith('- not applicable: '));
    expect(notApplicable.length).toBe(run.report?.skipped);
    expect(notApplicable.length).toBeGreaterThan(0);
    // One line each: the check without the suffix, then its reason, which the report also gives apart.
    const skipped = results.filter((result) => result.state === 'skipped');
    expect(skipped.every((result) => typeof result.notApplicable === 'string' && result.notApplicable.length > 0)).toBe(true);
    for (const result of skipped) {
      const rule = result.name.slice(0, result.name.indexOf(' — not applicable: '));
      expect(notApplicable).toContain(`- not applicable: ${result.module} > ${rule} — because ${result.notApplicable}`);
    }
    expect(run.code).toBe(0);
  }, 180_000);

  it('runs a TypeScript module that needs more than type stripping (an enum, a parameter property) with no Node flag', async () => {
    const run = await runCli(['--only', 'data', 'cli/typescript-syntax.ts']);
    expect(run.report?.failed, run.stdout).toBe(0);
    expect(run.report?.passed).toBeGreaterThan(40);
    expect(run.code).toBe(0);
  }, 180_000);

  it('reports modules that cannot be loaded, lack a create function, or whose create throws, as failed checks with the reason', async () => {
    const run = await runCli(['cli/no-default-export.mjs', 'cli/throws-on-import.mjs', 'cli/create-throws.mjs']);
    expect(run.stdout).toContain('✗ cli/no-default-export.mjs > loads the backend module');
    expect(run.stdout).toContain('must export a create function as its default export (it exports: createBackend)');
    expect(run.stdout).toContain('✗ cli/throws-on-import.mjs > loads the backend module');
    expect(run.stdout).toContain('Could not load cli/throws-on-import.mjs: conformance fixture: this module cannot be loaded');
    expect(run.stdout).toContain('✗ cli/create-throws.mjs > builds a backend with create() and reads its capabilities');
    expect(run.stdout).toContain('conformance fixture: no server to connect to');
    expect(run.lastLine).toBe('0 passed, 3 failed');
    expect(run.code).toBe(1);
  }, 180_000);

  // The command starts vitest before it looks for the module: 29 s at load average 12, past
  // 60 s at 16 on the two-core test machine (the same limit as the runs above).
  it('exits 2 with a clear message when the module does not exist', async () => {
    const run = await runCli(['no/such/backend.mjs']);
    expect(run.stderr).toContain('Cannot find the backend module "no/such/backend.mjs"');
    expect(run.code).toBe(2);
  }, 180_000);

  it('exits 2 for an unknown group, an unknown option, a bad --concurrency, or no module', async () => {
    const unknownGroup = await runCli(['--only', 'data,nonsense', 'control.ts']);
    expect(unknownGroup.stderr).toContain('Unknown group(s) nonsense');
    expect(unknownGroup.code).toBe(2);
    const unknownOption = await runCli(['--fast', 'control.ts']);
    expect(unknownOption.stderr).toContain('Unknown option --fast');
    expect(unknownOption.code).toBe(2);
    const badConcurrency = await runCli(['--concurrency', '0', 'control.ts']);
    expect(badConcurrency.stderr).toContain('--concurrency needs a positive integer');
    expect(badConcurrency.code).toBe(2);
    const noModule = await runCli([], { withReport: false });
    expect(noModule.stderr).toContain('Name at least one backend module');
    expect(noModule.code).toBe(2);
  }, 60_000);

  it('prints its usage for --help and exits 0', async () => {
    const run = await runCli(['--help'], { withReport: false });
    expect(run.stdout).toContain('Usage: latchkey-conformance');
    expect(run.code).toBe(0);
  }, 60_000);
});
