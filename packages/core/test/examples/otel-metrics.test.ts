/**
 * examples/observability/otel-metrics.ts is code: @latchkey/core's typecheck checks it against
 * the sources (its own tsconfig maps the @latchkey imports there), this test runs it with tsx
 * and checks what the in-memory exporter received (tools/docs keeps the README's excerpts of it true).
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const tsxCli = createRequire(import.meta.url).resolve('tsx/cli');

/** The value after `name{attributes} ` on the output line for that data point. */
function point(output: string, series: string): string | undefined {
  const line = output.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line?.slice(series.length + 1);
}

/** `count=… sum=… min=… max=…` as numbers. */
function histogram(value: string | undefined): Record<string, number> {
  return Object.fromEntries((value ?? '').split(' ').map((pair) => [pair.split('=')[0], Number(pair.split('=')[1])]));
}

describe('examples/observability/otel-metrics.ts', () => {
  it('records hits, misses, failures by code and lock waits through OpenTelemetry', async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [tsxCli, '--tsconfig', 'examples/observability/tsconfig.json', 'examples/observability/otel-metrics.ts'],
      { cwd: root, timeout: 60_000 },
    );
    const store = 'latchkey.store=sessions';
    expect(point(stdout, `latchkey.store.hits{${store},latchkey.operation=get}`), stdout).toBe('3');
    expect(point(stdout, `latchkey.store.misses{${store},latchkey.operation=get}`), stdout).toBe('1');
    expect(point(stdout, `latchkey.store.hits{${store},latchkey.operation=getMany}`), stdout).toBe('2');
    expect(point(stdout, `latchkey.store.misses{${store},latchkey.operation=getMany}`), stdout).toBe('1');
    expect(point(stdout, `latchkey.store.failures{${store},latchkey.operation=get,error.type=INVALID_KEY}`), stdout).toBe('1');
    // Four workers holding the lock 20 ms each, plus the holder of the timeout scenario; the
    // last worker waited for three holders (timers never fire early; 2 ms for clock rounding).
    const acquired = histogram(point(stdout, `latchkey.lock.wait{${store},latchkey.outcome=acquired}`));
    expect(acquired['count'], stdout).toBe(5);
    expect(acquired['max'], stdout).toBeGreaterThanOrEqual(3 * 20 - 2);
    const timedOut = histogram(point(stdout, `latchkey.lock.wait{${store},latchkey.outcome=timeout}`));
    expect(timedOut['count'], stdout).toBe(1);
    expect(timedOut['min'], stdout).toBeGreaterThanOrEqual(10 - 2);
  }, 90_000);
});
