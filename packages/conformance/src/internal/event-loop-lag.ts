/**
 * Measures how late timers fire in this process (event-loop lag), and how much of it came from
 * OUTSIDE the backend under test, so timing checks can tell "the backend was slow" from "this
 * process was starved of CPU". Sampling runs only while at least one check holds it.
 *
 * Every 10 ms a timer takes a sample: how much later than scheduled it fired. Who held the
 * event loop meanwhile is attributed like this (see {@link backendCallStarted}):
 *
 * - no backend call was in progress at any moment of the interval: none of the backend's calls
 *   can have caused the stall (the check's own code, the core, other work of the test process,
 *   or the OS not scheduling it did), so all of it is outside lag;
 * - the first backend call of the interval started only after the sample was due: the loop was
 *   held before any backend call began, so that part (from when the sample was due until the
 *   call started) is outside lag; what follows is judged as below;
 * - a backend call was in progress: only the part of the stall during which the event loop was
 *   IDLE counts (the lag minus the loop's active time meanwhile, from
 *   `performance.eventLoopUtilization()`). An idle loop is waiting for I/O or a timer; if the
 *   timer still fired late, the process was not scheduled when it was due — the machine's doing,
 *   not the backend's. A loop that was busy ran code: a backend that computes, busy-waits or
 *   blocks synchronously (a synchronous sleep, synchronous disk I/O) for 60 ms kept the loop
 *   active for 60 ms, even when the machine preempted it halfway, and earns no outside lag.
 *
 * The loop's active time is everyone's (other checks' work too), so it can only make the outside
 * share smaller: the attribution errs towards blaming the backend. What it cannot tell apart:
 * code a backend runs on its own timers BETWEEN its calls looks like the test's own. A retry
 * that allows is still reported as flaky with these numbers, never passed silently.
 */
const INTERVAL_MS = 10;
const KEEP_MS = 120_000;

interface Sample {
  /** `performance.now()` when the sample was taken. */
  readonly at: number;
  /** How much later than scheduled the sampling timer fired. */
  readonly lag: number;
  /** The part of `lag` attributed to outside the backend. */
  readonly outside: number;
}

/** Worst event-loop lag over a span, split by attribution. */
export interface LagReading {
  /** The worst lag attributed to outside the backend (what justifies a retry), in ms. */
  readonly outsideMs: number;
  /** The worst lag of any sample, whoever caused it, in ms. */
  readonly totalMs: number;
}

let samples: Sample[] = [];
let timer: ReturnType<typeof setInterval> | undefined;
let holders = 0;
let last = 0;
let lastLoop = performance.eventLoopUtilization();
/** Backend calls in progress now. */
let inFlight = 0;
/** Whether a backend call was in progress at some moment since the last sample. */
let touched = false;
/**
 * When the interval's first backend call started (with the process CPU time then), if no call
 * was in progress when the interval began; undefined otherwise.
 */
let firstCall: { readonly at: number; readonly loop: EventLoopUtilization } | undefined;

type EventLoopUtilization = ReturnType<typeof performance.eventLoopUtilization>;

/** How long the event loop ran code (was not waiting for I/O or timers) since `previous`, in ms. */
function activeMsSince(previous: EventLoopUtilization): number {
  return performance.eventLoopUtilization(previous).active;
}

/** The lag of the interval ending `now`, and its outside share. */
function measure(now: number): { lag: number; outside: number } {
  const lag = Math.max(0, now - last - INTERVAL_MS);
  if (!touched && inFlight === 0) return { lag, outside: lag };
  if (firstCall === undefined) return { lag, outside: Math.max(0, lag - activeMsSince(lastLoop)) };
  // Lag already suffered when the first call began was nobody's call; the rest only while idle.
  const before = Math.min(lag, Math.max(0, firstCall.at - last - INTERVAL_MS));
  return { lag, outside: before + Math.max(0, lag - before - activeMsSince(firstCall.loop)) };
}

function sample(): void {
  const now = performance.now();
  const { lag, outside } = measure(now);
  samples.push({ at: now, lag, outside });
  last = now;
  lastLoop = performance.eventLoopUtilization();
  touched = inFlight > 0;
  firstCall = undefined;
  if (samples.length > 4096) samples = samples.filter((entry) => entry.at > now - KEEP_MS);
}

/** Starts sampling (reference-counted); call the returned function to stop. */
export function watchEventLoopLag(): () => void {
  holders += 1;
  if (timer === undefined) {
    last = performance.now();
    lastLoop = performance.eventLoopUtilization();
    touched = inFlight > 0;
    firstCall = undefined;
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

/**
 * Marks a backend call as in progress until the returned function is called (once; later calls
 * do nothing). Lag while any backend call is in progress is attributed to the backend unless
 * the process was off the CPU (see the file comment).
 */
export function backendCallStarted(): () => void {
  if (!touched && inFlight === 0 && timer !== undefined) firstCall = { at: performance.now(), loop: performance.eventLoopUtilization() };
  inFlight += 1;
  touched = true;
  let ended = false;
  return () => {
    if (ended) return;
    ended = true;
    inFlight -= 1;
  };
}

/** The worst lag since `startedAt` (a `performance.now()` reading), including now, split by attribution. */
export function readLagSince(startedAt: number): LagReading {
  if (timer === undefined) return { outsideMs: 0, totalMs: 0 };
  const now = performance.now();
  let outsideMs = 0;
  let totalMs = 0;
  /** Counts the part of a stall (from when its sample was due until `at`) that lies after `startedAt`. */
  const add = (at: number, lag: number, outside: number): void => {
    const within = Math.max(0, at - Math.max(startedAt, at - lag));
    outsideMs = Math.max(outsideMs, Math.min(outside, within));
    totalMs = Math.max(totalMs, Math.min(lag, within));
  };
  const current = measure(now);
  add(now, current.lag, current.outside);
  for (let i = samples.length - 1; i >= 0; i--) {
    const entry = samples[i] as Sample;
    if (entry.at < startedAt) break;
    add(entry.at, entry.lag, entry.outside);
  }
  return { outsideMs, totalMs };
}

/**
 * The worst lag from outside the backend, in ms, since `startedAt` (a `performance.now()`
 * reading), including now: what a timing bound may allow on top, and what justifies a retry.
 */
export function lagSince(startedAt: number): number {
  return readLagSince(startedAt).outsideMs;
}
