import { afterEach, describe, expect, it, vi } from 'vitest';
import { GIVE_BACK_FAILED_WARNING, reportGiveBackFailure } from '../../../src/index.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('reportGiveBackFailure', () => {
  it('emits one process warning with code LATCHKEY_GIVE_BACK_FAILED naming the backend, the key and the failure', () => {
    const emitWarning = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    reportGiveBackFailure('FakeBackend', { key: 'orders:42' }, new Error('connection reset'));
    expect(GIVE_BACK_FAILED_WARNING).toBe('LATCHKEY_GIVE_BACK_FAILED');
    expect(emitWarning).toHaveBeenCalledTimes(1);
    const [message, options] = emitWarning.mock.calls[0] as [string, { code: string; detail: string }];
    expect(options.code).toBe('LATCHKEY_GIVE_BACK_FAILED');
    expect(message).toContain('FakeBackend');
    expect(message).toContain('"orders:42"');
    expect(message).toContain('connection reset');
    expect(options.detail).toContain('lapses');
  });

  it('describes a failure that is not an Error by its string form', () => {
    const emitWarning = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    reportGiveBackFailure('FakeBackend', { key: 'k' }, 'NOSCRIPT');
    expect(emitWarning.mock.calls[0]?.[0]).toContain('NOSCRIPT');
  });

  it("reaches process 'warning' listeners", async () => {
    const heard = new Promise<Error & { code?: string }>((resolve) => process.once('warning', resolve));
    reportGiveBackFailure('FakeBackend', { key: 'k' }, new Error('gone'));
    const warning = await heard;
    expect(warning.code).toBe(GIVE_BACK_FAILED_WARNING);
  });
});
