/**
 * Error text for reports.
 *
 * @module
 */

/** A one-line description of `error`, with its `cause` chain (at most three levels). */
export function errorMessage(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 3 && current !== undefined && current !== null; depth++) {
    if (current instanceof Error) {
      const text = current.message.length > 0 ? current.message : current.name;
      const prefix = current.name !== 'Error' && !text.startsWith(current.name) ? `${current.name}: ` : '';
      // Wrappers often repeat their cause's message; say it once.
      if (parts.at(-1) !== `${prefix}${text}`) parts.push(`${prefix}${text}`);
      current = (current as { cause?: unknown }).cause;
    } else {
      parts.push(String(current));
      break;
    }
  }
  return parts.join(' ← ').replace(/\s+/g, ' ').trim();
}

/**
 * Settles like `work`, or rejects after `ms` with an error naming `what`, so that a call that
 * never settles cannot hang the run (`work` is left to settle on its own).
 */
export async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
