/**
 * The IPC messages between the test process and a forked worker.
 *
 * @module
 */
/** Parent → worker: run one command. */
export interface Request {
  readonly id: number;
  readonly command: string;
  readonly args: unknown;
}

/** Worker → parent: the command's result or error. */
export type Response =
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | {
      readonly id: number;
      readonly ok: false;
      readonly error: { readonly name: string; readonly message: string; readonly stack?: string };
    };

/** Worker → parent, once, when it is ready for requests. */
export interface Ready {
  readonly ready: true;
  readonly pid: number;
}

/** Exit code of a worker that did not exit by itself after its IPC channel closed. */
export const EXIT_KEPT_ALIVE = 3;

/** How long a disconnected worker may take to exit by itself. */
export const NATURAL_EXIT_GRACE_MS = 4000;
