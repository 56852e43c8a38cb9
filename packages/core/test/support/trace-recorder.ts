import type { LatchkeyTracingChannel } from '../../src/index.js';

/** The five events of a tracing channel, in the order Node publishes them for a promise. */
export type TraceEvent = 'start' | 'end' | 'asyncStart' | 'asyncEnd' | 'error';

/** One event as a subscriber saw it: the message object itself and a copy taken at the event. */
export interface RecordedEvent<M> {
  readonly event: TraceEvent;
  readonly message: M;
  readonly snapshot: M & { readonly error?: unknown; readonly result?: unknown };
}

/** A subscription to every event of a channel, recording them until `stop()`. */
export interface TraceRecorder<M> {
  readonly events: RecordedEvent<M>[];
  /** The events of one operation (by message identity), in order. */
  of(message: M): TraceEvent[];
  /** The messages whose `start` was seen, in order. */
  messages(): M[];
  /** Unsubscribes; returns what `TracingChannel.unsubscribe` returned. */
  stop(): boolean;
}

/** Subscribes to all five events of `channel` and records each with a snapshot of its message. */
export function recordTraces<M extends object>(channel: LatchkeyTracingChannel<M>): TraceRecorder<M> {
  const events: RecordedEvent<M>[] = [];
  const on = (event: TraceEvent) => (message: M) => {
    events.push({ event, message, snapshot: { ...message } });
  };
  const handlers = { start: on('start'), end: on('end'), asyncStart: on('asyncStart'), asyncEnd: on('asyncEnd'), error: on('error') };
  channel.subscribe(handlers);
  return {
    events,
    of: (message) => events.filter((recorded) => recorded.message === message).map((recorded) => recorded.event),
    messages: () => events.filter((recorded) => recorded.event === 'start').map((recorded) => recorded.message),
    stop: () => channel.unsubscribe(handlers),
  };
}

/** The snapshot of `message` taken at `event` (the first such event). */
export function at<M>(recorder: TraceRecorder<M>, message: M, event: TraceEvent): RecordedEvent<M>['snapshot'] {
  const found = recorder.events.find((recorded) => recorded.message === message && recorded.event === event);
  if (found === undefined) throw new Error(`no ${event} event for ${JSON.stringify(message)}`);
  return found.snapshot;
}
