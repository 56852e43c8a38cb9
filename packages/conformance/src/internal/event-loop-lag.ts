/**
 * Measures how late timers fire in this process (event-loop lag), so timing checks can tell
 * "the backend was slow" from "this process was starved of CPU". Sampling runs only while at
 * least one check holds it.
 */
const INTERVAL_MS = 10;
const KEEP_MS = 120_000;

interface Sample {
  /** `performance.now()` when the sample was taken. */
  readonly at: number;
  /** How much later than scheduled the sampling timer fired. */
  readonly lag: number;
}

let samples: Sample[] = [];
let timer: ReturnType<typeof setInterval> | undefined;
let holders = 0;
let last = 0;

function sample(): void {
  const now = performance.now();
  samples.push({ at: now, lag: Math.max(0, now - last - INTERVAL_MS) });
  last = now;
  if (samples.length > 4096) samples = samples.filter((entry) => entry.at > now - KEEP_MS);
}

/** Starts sampling (reference-counted); call the returned function to stop. */
export function watchEventLoopLag(): () => void {
  holders += 1;
  if (timer === undefined) {
    last = performance.now();
    timer = setInterval(sample, INTERVAL_MS);
    timer.unref();
  }
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    holders -= 1;
    if (holders === 0 && timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
      samples = [];
    }
  };
}

/** The worst lag, in ms, seen since `startedAt` (a `performance.now()` reading), including now. */
export function lagSince(startedAt: number): number {
  let worst = timer === undefined ? 0 : Math.max(0, performance.now() - last - INTERVAL_MS);
  for (let i = samples.length - 1; i >= 0; i--) {
    const entry = samples[i] as Sample;
    if (entry.at < startedAt) break;
    worst = Math.max(worst, entry.lag);
  }
  return worst;
}
