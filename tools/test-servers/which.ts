/**
 * Finding server binaries on the PATH.
 *
 * @module
 */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * The absolute path of an executable named `name` on the PATH, or `undefined`.
 * A name containing a slash is checked as a path.
 *
 * @param name - Executable name, e.g. `redis-server`.
 */
export function which(name: string): string | undefined {
  const candidates = name.includes('/')
    ? [name]
    : (process.env['PATH'] ?? '')
        .split(delimiter)
        .filter(Boolean)
        .map((dir) => join(dir, name));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Thrown when a server's binary is not installed: the kind is unavailable, not broken. */
export class MissingBinaryError extends Error {
  override readonly name = 'MissingBinaryError';
  /**
   * @param binary - The missing executable.
   * @param hint - How to install it.
   */
  constructor(
    readonly binary: string,
    hint: string,
  ) {
    super(`${binary} not found on PATH (${hint})`);
  }
}

/**
 * The path of `name`, or a {@link MissingBinaryError} with an install hint.
 *
 * @param name - Executable name.
 * @param hint - How to install it, for the error message.
 */
export function requireBinary(name: string, hint: string): string {
  const path = which(name);
  if (path === undefined) throw new MissingBinaryError(name, hint);
  return path;
}
