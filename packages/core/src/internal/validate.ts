import { InvalidKeyError, ValidationError } from '../errors.js';

/** @throws {InvalidKeyError} unless `key` is a non-empty string. */
export function assertKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') throw new InvalidKeyError(key, `keys must be strings, got ${key === null ? 'null' : typeof key}`);
  if (key.length === 0) throw new InvalidKeyError(key, 'keys must not be empty');
}

/** @throws {ValidationError} unless `value` is undefined or a finite number >= 0 (or > 0 when `positive`). */
export function optionalDuration(name: string, value: unknown, { positive = false, allowInfinity = false } = {}): number | undefined {
  if (value === undefined) return undefined;
  if (
    typeof value !== 'number' ||
    Number.isNaN(value) ||
    (!allowInfinity && !Number.isFinite(value)) ||
    value < 0 ||
    (positive && value === 0)
  ) {
    throw new ValidationError(
      `${name} must be ${positive ? 'a positive' : 'a non-negative'} ${allowInfinity ? '' : 'finite '}number of milliseconds, got ${describe(value)}.`,
    );
  }
  return value;
}

/** @throws {ValidationError} unless `value` is undefined or a boolean. */
export function optionalBoolean(name: string, value: unknown): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw new ValidationError(`${name} must be a boolean, got ${describe(value)}.`);
  return value;
}

/** @throws {ValidationError} unless `value` is undefined or an AbortSignal. */
export function optionalSignal(name: string, value: unknown): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal)) throw new ValidationError(`${name} must be an AbortSignal, got ${describe(value)}.`);
  return value;
}

/** @throws {ValidationError} unless `value` is undefined or a (non-array) object. */
export function optionalObject(name: string, value: unknown): object | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ValidationError(`${name} must be an object, got ${describe(value)}.`);
  return value;
}

/** A short description of a value for error messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}
