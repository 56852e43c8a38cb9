import type { TracingChannel } from 'node:diagnostics_channel';

/** The fields every latchkey message gets while its call runs (see ../tracing.ts). */
interface TraceFields {
  outcome: string | undefined;
  durationMs: number | undefined;
}

/** A message as its publisher fills it in: the public message types are read-only. */
export type Writable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Runs `run` under `channel.tracePromise` with `message` as the context. Callers check
 * `channel.hasSubscribers` first, so that nobody listening costs one boolean read.
 *
 * - `durationMs` is set when `run` settles, before `error` and `asyncStart` are published.
 * - A rejection after `run` set `outcome` is that outcome's documented rejection (a miss, a
 *   lost lease, a timeout, an abort), not a failure: it is passed to the caller without an
 *   `error` event, so `error` means something went wrong.
 * - `run` must not throw synchronously (an async function never does): that would throw
 *   from a call that promises to reject.
 * - `run`'s value stays out of the message (the channel's `result` is `undefined`): values
 *   can be secrets, and subscribers never need them.
 */
export function traceCall<M extends object, R>(channel: TracingChannel<unknown, M>, message: M, run: () => Promise<R>): Promise<R> {
  const fields = message as M & TraceFields;
  let value: R | undefined;
  let rejection: { readonly error: unknown } | undefined;
  // Plain promise chains rather than async functions: two promises fewer per traced call.
  const traced = (): Promise<void> => {
    const startedAt = performance.now();
    return run().then(
      (result) => {
        fields.durationMs = performance.now() - startedAt;
        value = result;
      },
      (error: unknown) => {
        fields.durationMs = performance.now() - startedAt;
        if (fields.outcome === undefined) throw error;
        rejection = { error };
      },
    );
  };
  return channel.tracePromise(traced, message).then(() => {
    if (rejection !== undefined) throw rejection.error;
    return value as R;
  });
}
