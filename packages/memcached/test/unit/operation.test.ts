import { BackendTimeoutError } from '@latchkey/core';
import { describe, expect, it } from 'vitest';
import { OperationRunner } from '../../src/internal/operation.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('OperationRunner', () => {
  it('rejects with BackendTimeoutError when the work outlives the deadline', async () => {
    const runner = new OperationRunner(30);
    const startedAt = performance.now();
    const error = await runner.run('get', () => new Promise<never>(() => undefined)).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BackendTimeoutError);
    expect((error as BackendTimeoutError).timeoutMs).toBe(30);
    expect(performance.now() - startedAt).toBeLessThan(200);
    expect(runner.size).toBe(0);
  });

  it('stops multi-step work at the next check after the deadline', async () => {
    const runner = new OperationRunner(20);
    const steps: number[] = [];
    await expect(
      runner.run('step', async (op) => {
        for (let i = 0; i < 5; i++) {
          op.check();
          steps.push(i);
          await sleep(15);
        }
      }),
    ).rejects.toBeInstanceOf(BackendTimeoutError);
    await sleep(60);
    expect(steps.length).toBeLessThan(3);
  });

  it('hands a result that arrives after the deadline to onLate', async () => {
    const runner = new OperationRunner(10);
    const late: string[] = [];
    await expect(
      runner.run(
        'acquire',
        () => sleep(40).then(() => 'lease'),
        (value) => late.push(value),
      ),
    ).rejects.toBeInstanceOf(BackendTimeoutError);
    await sleep(50);
    expect(late).toStrictEqual(['lease']);
  });

  it('rejects running work on cancelAll and keeps no timer', async () => {
    const runner = new OperationRunner(10_000);
    const running = runner.run('get', () => new Promise<never>(() => undefined));
    const reason = new Error('closed');
    runner.cancelAll(reason);
    await expect(running).rejects.toBe(reason);
    expect(runner.size).toBe(0);
  });

  it('passes on results and errors of work that settles in time', async () => {
    const runner = new OperationRunner(1000);
    expect(await runner.run('ok', async () => 7)).toBe(7);
    const failure = new Error('boom');
    await expect(runner.run('fail', () => Promise.reject(failure))).rejects.toBe(failure);
    await expect(
      runner.run('throws', () => {
        throw failure;
      }),
    ).rejects.toBe(failure);
  });
});
