/**
 * The message loop of a forked worker: answers {@link Request}s by calling the named command,
 * counts unhandled rejections, and once the parent closes the IPC channel expects the process
 * to exit by itself — a worker still alive {@link NATURAL_EXIT_GRACE_MS} later prints what
 * kept it alive and exits with {@link EXIT_KEPT_ALIVE}.
 *
 * @module
 */
import { outcomeOf } from './outcome.js';
import { EXIT_KEPT_ALIVE, NATURAL_EXIT_GRACE_MS, type Ready, type Request, type Response } from './protocol.js';

const unhandled: string[] = [];

/** Unhandled rejections this process has seen so far (as outcomes). */
export function unhandledRejections(): string[] {
  return [...unhandled];
}

function reply(message: Response | Ready): void {
  process.send?.(message);
}

/** Serves `commands` over IPC until the parent disconnects. */
export function serve(commands: object): void {
  process.on('unhandledRejection', (reason) => {
    unhandled.push(outcomeOf(reason));
  });

  process.on('message', (message: Request) => {
    const handler = (commands as Record<string, unknown>)[message.command];
    const run =
      typeof handler === 'function'
        ? (handler as (args: unknown) => Promise<unknown>)(message.args)
        : Promise.reject(new Error(`unknown command ${String(message.command)}`));
    run.then(
      (result) => reply({ id: message.id, ok: true, result }),
      (error: unknown) => {
        const failure = error instanceof Error ? error : new Error(String(error));
        reply({
          id: message.id,
          ok: false,
          error: { name: failure.name, message: outcomeOf(error), ...(failure.stack === undefined ? {} : { stack: failure.stack }) },
        });
      },
    );
  });

  process.once('disconnect', () => {
    const watchdog = setTimeout(() => {
      process.stderr.write(
        `fault worker ${process.pid} still alive ${NATURAL_EXIT_GRACE_MS} ms after disconnect: ${process.getActiveResourcesInfo().join(', ')}\n`,
      );
      process.exit(EXIT_KEPT_ALIVE);
    }, NATURAL_EXIT_GRACE_MS);
    watchdog.unref();
  });

  reply({ ready: true, pid: process.pid });
}
