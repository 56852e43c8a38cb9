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
 *   active for 60 ms and earns no outside lag;
 * - on top of that, on Linux, the time this thread spent RUNNABLE BUT NOT RUNNING during the
 *   interval (its run-queue wait in `/proc/thread-self/schedstat`) is outside lag whatever code
 *   was running — the machine giving the CPU to other processes, also in the middle of a
 *   callback, which the idle rule above cannot see — except the wait that fell inside the
 *   backend's own synchronous code (measured around each call, see {@link backendCodeEntered}):
 *   a backend that computes for 60 ms on a loaded machine is blamed for all of it. A backend
 *   that blocks synchronously is sleeping, not runnable, so this rule gives it nothing either.
 *   What it cannot see: a backend computing in a callback of its own after its first `await`
 *   has its run-queue wait there counted as outside.
 *
 * The loop's active time is everyone's (other checks' work too), so it can only make the outside
 * share smaller: the attribution errs towards blaming the backend. What it cannot tell apart:
 * code a backend runs on its own timers BETWEEN its calls looks like the test's own. A retry
 * that allows is still reported as flaky with these numbers, never passed silently.
 */
import { readFileSync } from 'node:fs';

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
/** This thread's run-queue wait at the last sample, in ms (undefined where it cannot be read). */
let lastWait: number | undefined;
/** Run-queue wait that fell inside backend code since the last sample, in ms. */
let backendWait = 0;
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

const SCHEDSTAT = '/proc/thread-self/schedstat';
/** Whether {@link SCHEDSTAT} could be read (checked once). */
let schedstatReadable = true;

/**
 * How long this thread has waited for a CPU while runnable, in ms since it started (the second
 * field of Linux's schedstat, in ns); undefined where the file does not exist or cannot be read.
 */
function runQueueWaitMs(): number | undefined {
  if (!schedstatReadable) return undefined;
  try {
    const wait = Number(readFileSync(SCHEDSTAT, 'latin1').split(' ')[1]);
    if (Number.isFinite(wait)) return wait / 1e6;
  } catch {
    // Not Linux, or no /proc: the idle rule alone applies (see the file comment).
  }
  schedstatReadable = false;
  return undefined;
}

/** The lag of the interval ending `now`, and its outside share (`wait`: run-queue wait now). */
function measure(now: number, wait: number | undefined): { lag: number; outside: number } {
  const lag = Math.max(0, now - last - INTERVAL_MS);
  if (!touched && inFlight === 0) return { lag, outside: lag };
  const waited = wait === undefined || lastWait === undefined ? 0 : Math.min(lag, Math.max(0, wait - lastWait - backendWait));
  if (firstCall === undefined) return { lag, outside: Math.max(waited, lag - activeMsSince(lastLoop)) };
  // Lag already suffered when the first call began was nobody's call; the rest only while idle.
  const before = Math.min(lag, Math.max(0, firstCall.at - last - INTERVAL_MS));
  return { lag, outside: Math.max(waited, before + Math.max(0, lag - before - activeMsSince(firstCall.loop))) };
}

function sample(): void {
  const now = performance.now();
  const wait = runQueueWaitMs();
  const { lag, outside } = measure(now, wait);
  samples.push({ at: now, lag, outside });
  last = now;
  lastLoop = performance.eventLoopUtilization();
  lastWait = wait;
  backendWait = 0;
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
    lastWait = runQueueWaitMs();
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

/**
 * Marks the backend's own synchronous code as running until the returned function is called:
 * the run-queue wait meanwhile is the backend's (see the file comment). Call it around the
 * synchronous part of each backend call, inside {@link backendCallStarted}'s span.
 */
export function backendCodeEntered(): () => void {
  if (timer === undefined || !schedstatReadable) return noop;
  const before = runQueueWaitMs();
  return () => {
    const after = runQueueWaitMs();
    if (before !== undefined && after !== undefined) backendWait += Math.max(0, after - before);
  };
}

function noop(): void {}

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
  const current = measure(now, runQueueWaitMs());
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
