import type { Backend } from '@latchkey/core';
import { MemoryBackend } from '@latchkey/memory';
import { describe, expect, it } from 'vitest';
import { defaultRecoveryMs, parseServerAddress, resolveFaultEnvironment, STORE_BACKSTOP_MS } from '../../src/internal/fault-environment.js';

const noCleanup = async (): Promise<void> => undefined;

describe('the faults option', () => {
  it('takes the server as { host, port } or as host:port, IPv6 in brackets', () => {
    expect(parseServerAddress({ host: 'db.local', port: 6379 })).toStrictEqual({ host: 'db.local', port: 6379 });
    expect(parseServerAddress('127.0.0.1:11211')).toStrictEqual({ host: '127.0.0.1', port: 11211 });
    expect(parseServerAddress('[::1]:5432')).toStrictEqual({ host: '::1', port: 5432 });
  });

  it.each([['127.0.0.1'], [':6379'], ['host:0'], ['host:70000'], [{ host: '', port: 1 }], [{ host: 'h', port: 1.5 }], [null]])(
    'refuses the server %j with a TypeError that names the option',
    (server) => {
      expect(() => parseServerAddress(server as never)).toThrow(/options\.faults\.server must be/);
    },
  );

  it('holds a backend to its declared callDeadlineMs, and one without to the store backstop', async () => {
    const declared = await resolveFaultEnvironment({ server: '127.0.0.1:1', createThrough: () => new MemoryBackend() }, noCleanup);
    expect([declared.deadlineMs, declared.deadlineSource]).toStrictEqual([0, 'callDeadlineMs']);
    const undeclared = await resolveFaultEnvironment(
      {
        server: '127.0.0.1:1',
        // Only the capabilities and close are read while resolving the option.
        createThrough: () => {
          const { callDeadlineMs: _omitted, ...capabilities } = new MemoryBackend().capabilities;
          return { capabilities, close: async () => undefined } as unknown as Backend;
        },
      },
      noCleanup,
    );
    expect([undeclared.deadlineMs, undeclared.deadlineSource]).toStrictEqual([STORE_BACKSTOP_MS, 'the KeyValueStore backstop']);
  });

  it('gives each check time for its bound and its recovery', async () => {
    const env = await resolveFaultEnvironment(
      { server: '127.0.0.1:1', createThrough: () => new MemoryBackend(), recoveryMs: 500 },
      noCleanup,
    );
    expect(env.recoveryMs).toBe(500);
    expect(env.checkTimeLimitMs).toBeGreaterThan(env.deadlineMs + env.slackMs + 500);
    expect(defaultRecoveryMs(1000, 5)).toBe(2 * 1000 + 2000 + 4 * 5);
  });

  it('refuses a negative slackMs and a createThrough that is not a function', async () => {
    await expect(
      resolveFaultEnvironment({ server: '127.0.0.1:1', createThrough: () => new MemoryBackend(), slackMs: -1 }, noCleanup),
    ).rejects.toThrow(/slackMs/);
    await expect(resolveFaultEnvironment({ server: '127.0.0.1:1', createThrough: 'no' as never }, noCleanup)).rejects.toThrow(
      /createThrough/,
    );
  });
});
