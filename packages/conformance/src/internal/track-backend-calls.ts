import type { Backend } from '@latchkey/core';
import { backendCallStarted, backendCodeEntered } from './event-loop-lag.js';

const tracked = new WeakSet<object>();

/** Function-valued members that are not backend calls: the constructor and the key mangler (a pure function the store calls synchronously). */
const NOT_CALLS = new Set(['constructor', 'keyMangler']);

/**
 * Makes every method call on `backend` count as a backend call in progress (see
 * {@link backendCallStarted}) until the promise it returns settles — or, for an async iterable
 * (`keys()`), while each step of the iteration is pending. Event-loop lag during a backend call
 * is then not taken as lag from outside the backend, so a backend that blocks the event loop
 * cannot earn its failing checks a retry.
 *
 * The methods are replaced on the instance itself, bound to it (so private fields keep working
 * and the object keeps its identity, class and prototype). An instance whose methods cannot be
 * replaced (frozen) makes {@link untrackedBackends} true, and then no lag counts as outside.
 */
export function trackBackendCalls<B extends Backend>(backend: B): B {
  if (typeof backend !== 'object' || backend === null || tracked.has(backend)) return backend;
  const target = backend as unknown as Record<string, unknown>;
  for (const name of methodNames(backend)) {
    const original = target[name];
    if (typeof original !== 'function') continue;
    const call = original as (...args: unknown[]) => unknown;
    try {
      Object.defineProperty(backend, name, {
        configurable: true,
        writable: true,
        enumerable: false,
        value: function tracked(this: unknown, ...args: unknown[]): unknown {
          const ended = backendCallStarted();
          const left = backendCodeEntered();
          let result: unknown;
          try {
            result = call.apply(this === undefined ? backend : this, args);
          } catch (error) {
            ended();
            throw error;
          } finally {
            left();
          }
          return followResult(result, ended);
        },
      });
    } catch {
      untracked = true;
    }
  }
  tracked.add(backend);
  return backend;
}

let untracked = false;

/** True once a backend could not be tracked: lag during its calls could pass for outside lag. */
export function untrackedBackends(): boolean {
  return untracked;
}

function methodNames(backend: object): string[] {
  const names = new Set<string>();
  for (
    let proto: object | null = backend;
    proto !== null && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto) as object | null
  ) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      const descriptor = Object.getOwnPropertyDescriptor(proto, name);
      if (descriptor !== undefined && typeof descriptor.value === 'function' && !NOT_CALLS.has(name)) names.add(name);
    }
  }
  return [...names];
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as PromiseLike<unknown>).then === 'function'
  );
}

function followResult(result: unknown, ended: () => void): unknown {
  if (isThenable(result)) {
    // A promise of its own for the caller, so a rejection nobody handles is still reported as
    // unhandled (a reaction on the backend's promise would count as handling it).
    return Promise.resolve(result).then(
      (value) => {
        ended();
        return value;
      },
      (error: unknown) => {
        ended();
        throw error;
      },
    );
  }
  ended();
  if (typeof result === 'object' && result !== null && Symbol.asyncIterator in result) {
    return trackIterable(result as AsyncIterable<unknown>);
  }
  return result;
}

function trackIterable(iterable: AsyncIterable<unknown>): AsyncIterable<unknown> {
  return {
    [Symbol.asyncIterator]() {
      const iterator = iterable[Symbol.asyncIterator]();
      const step =
        (method: 'next' | 'return' | 'throw') =>
        (...args: unknown[]): Promise<IteratorResult<unknown>> => {
          const ended = backendCallStarted();
          try {
            const fn = iterator[method] as ((...inner: unknown[]) => Promise<IteratorResult<unknown>>) | undefined;
            if (fn === undefined) {
              ended();
              return Promise.resolve({ done: true, value: args[0] });
            }
            const left = backendCodeEntered();
            let pending: Promise<IteratorResult<unknown>>;
            try {
              pending = fn.apply(iterator, args);
            } finally {
              left();
            }
            return Promise.resolve(pending).then(
              (value) => {
                ended();
                return value;
              },
              (error: unknown) => {
                ended();
                throw error;
              },
            );
          } catch (error) {
            ended();
            throw error;
          }
        };
      return { next: step('next'), return: step('return'), throw: step('throw') };
    },
  };
}
