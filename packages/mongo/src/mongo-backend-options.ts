import { MongoClient, type MongoClientOptions } from 'mongodb';
import { MAX_TIMER_MS, ValidationError } from '@latchkey/core';

/** Options of {@link MongoBackend}. Give exactly one of `url` and `client`. */
export interface MongoBackendOptions {
  /**
   * Connection string (`mongodb://…` or `mongodb+srv://…`); the backend builds its own
   * `MongoClient` and closes it on `close()`.
   */
  readonly url?: string;
  /**
   * A ready client. The backend uses it as configured (write concern, read preference, TLS…)
   * and does not close it on `close()`. It must not use unacknowledged writes (`w: 0`).
   */
  readonly client?: MongoClient;
  /** Database name. */
  readonly dbName: string;
  /** Collection that holds one document per stored key. */
  readonly collection: string;
  /**
   * Deadline of each server call, in ms: a call that has not settled by then rejects with
   * `BackendTimeoutError`. A built client also gets it as `connectTimeoutMS` and
   * `socketTimeoutMS`, and 80 % of it as `serverSelectionTimeoutMS`,
   * so an unreachable server fails within the deadline with `BackendUnavailableError` and the
   * driver's reason, instead of the driver's 30 s wait.
   * @default 5000
   */
  readonly operationTimeoutMs?: number;
  /**
   * Options for the client built from `url` (only with `url`): `writeConcern`,
   * `readPreference`, `replicaSet`, `tls` and its files, `auth` (credentials), pool sizes…
   * They override the timeouts derived from `operationTimeoutMs`. `w: 0` is refused.
   */
  readonly clientOptions?: MongoClientOptions;
  /**
   * Create (idempotently, on first use) a TTL index that lets the server delete documents
   * whose value expired and that never held a lock. Reads filter out expired values
   * themselves either way; the index only reclaims space. Servers without TTL indexes
   * (FerretDB 1.x) get a one-time warning; call `purgeExpired()` there instead. With `false`,
   * documents this backend creates carry no `purgeable` mark, so a TTL index another backend
   * made on the collection never removes them either (they go by `purgeExpired()`, a delete or
   * an overwrite).
   * @default true
   */
  readonly documentTtlIndex?: boolean;
  /**
   * Longest pause, in ms, between two tries of a lock waiter polling the server (pauses start
   * at 10 ms and double up to this). Releases in this process wake waiters at once.
   * @default 200
   */
  readonly lockPollIntervalMs?: number;
}

/** Validated options. @internal */
export interface ResolvedMongoOptions {
  readonly client: MongoClient;
  readonly ownsClient: boolean;
  readonly dbName: string;
  readonly collection: string;
  readonly operationTimeoutMs: number;
  readonly documentTtlIndex: boolean;
  readonly lockPollIntervalMs: number;
}

/** Default {@link MongoBackendOptions.operationTimeoutMs}. */
export const DEFAULT_OPERATION_TIMEOUT_MS = 5000;
/** Default {@link MongoBackendOptions.lockPollIntervalMs}. */
export const DEFAULT_LOCK_POLL_INTERVAL_MS = 200;
/**
 * The share of `operationTimeoutMs` a built client gets as `serverSelectionTimeoutMS`: below
 * the deadline, so a failed server selection rejects with the driver's error rather than a
 * bare timeout. @internal
 */
export const SERVER_SELECTION_SHARE = 0.8;
/** First pause of a polling lock waiter. */
export const MIN_LOCK_POLL_INTERVAL_MS = 10;

const KNOWN = new Set([
  'url',
  'client',
  'dbName',
  'collection',
  'operationTimeoutMs',
  'clientOptions',
  'documentTtlIndex',
  'lockPollIntervalMs',
]);
// Characters MongoDB refuses in database names on any platform.
const BAD_DB_NAME_CHARS = /[/\\. "$*<>:|?\0]/;

/**
 * Validates `options` and builds the client when given a `url` (no I/O: the driver connects
 * on first use).
 * @throws {ValidationError} naming the bad option.
 * @internal
 */
export function resolveMongoOptions(options: unknown): ResolvedMongoOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ValidationError('MongoBackend options must be an object with dbName, collection, and url or client.');
  }
  const record = options as Record<string, unknown>;
  for (const name of Object.keys(record)) {
    if (!KNOWN.has(name)) throw new ValidationError(`MongoBackend: unknown option "${name}" (known: ${[...KNOWN].join(', ')}).`);
  }
  const dbName = checkDbName(record['dbName']);
  const collection = checkCollection(record['collection'], dbName);
  const operationTimeoutMs = checkDuration('operationTimeoutMs', record['operationTimeoutMs']) ?? DEFAULT_OPERATION_TIMEOUT_MS;
  const lockPollIntervalMs = checkDuration('lockPollIntervalMs', record['lockPollIntervalMs']) ?? DEFAULT_LOCK_POLL_INTERVAL_MS;
  const documentTtlIndex = record['documentTtlIndex'] ?? true;
  if (typeof documentTtlIndex !== 'boolean')
    throw new ValidationError(`MongoBackend: documentTtlIndex must be a boolean, got ${describe(documentTtlIndex)}.`);

  const { url, client, clientOptions } = record;
  if (url !== undefined && client !== undefined) throw new ValidationError('MongoBackend: give either url or client, not both.');
  if (url === undefined && client === undefined) throw new ValidationError('MongoBackend: url or client is required.');
  const base = { dbName, collection, operationTimeoutMs, documentTtlIndex, lockPollIntervalMs };
  if (client !== undefined) {
    if (clientOptions !== undefined)
      throw new ValidationError('MongoBackend: clientOptions apply only to a client built from url; configure the given client itself.');
    if (typeof client !== 'object' || client === null || typeof (client as { db?: unknown }).db !== 'function') {
      throw new ValidationError(`MongoBackend: client must be a MongoClient, got ${describe(client)}.`);
    }
    const mongoClient = client as MongoClient;
    checkAcknowledged((mongoClient.options as { writeConcern?: { w?: unknown } } | undefined)?.writeConcern?.w, 'the given client');
    return { ...base, client: mongoClient, ownsClient: false };
  }
  if (typeof url !== 'string' || !/^mongodb(\+srv)?:\/\//.test(url)) {
    throw new ValidationError(`MongoBackend: url must be a mongodb:// or mongodb+srv:// connection string, got ${describe(url)}.`);
  }
  const extra = checkClientOptions(clientOptions);
  let built: MongoClient;
  try {
    built = new MongoClient(url, {
      serverSelectionTimeoutMS: Math.max(1, Math.floor(operationTimeoutMs * SERVER_SELECTION_SHARE)),
      connectTimeoutMS: Math.ceil(operationTimeoutMs),
      socketTimeoutMS: Math.ceil(operationTimeoutMs),
      ...extra,
    });
  } catch (error) {
    throw new ValidationError(`MongoBackend: invalid url or clientOptions: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  checkAcknowledged(built.options.writeConcern?.w, 'url/clientOptions');
  return { ...base, client: built, ownsClient: true };
}

function checkDbName(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0)
    throw new ValidationError(`MongoBackend: dbName must be a non-empty string, got ${describe(value)}.`);
  if (BAD_DB_NAME_CHARS.test(value))
    throw new ValidationError(`MongoBackend: dbName ${JSON.stringify(value)} contains a character MongoDB refuses (/\\. "$*<>:|? or NUL).`);
  if (Buffer.byteLength(value, 'utf8') >= 64)
    throw new ValidationError(`MongoBackend: dbName ${JSON.stringify(value)} must be shorter than 64 bytes.`);
  return value;
}

function checkCollection(value: unknown, dbName: string): string {
  if (typeof value !== 'string' || value.length === 0)
    throw new ValidationError(`MongoBackend: collection must be a non-empty string, got ${describe(value)}.`);
  if (value.includes('$') || value.includes('\0'))
    throw new ValidationError(`MongoBackend: collection ${JSON.stringify(value)} must not contain "$" or NUL.`);
  if (value.startsWith('system.'))
    throw new ValidationError(`MongoBackend: collection ${JSON.stringify(value)} must not start with "system." (reserved by MongoDB).`);
  if (Buffer.byteLength(`${dbName}.${value}`, 'utf8') > 255)
    throw new ValidationError(`MongoBackend: the namespace "${dbName}.${value}" is longer than MongoDB's 255 bytes.`);
  return value;
}

function checkDuration(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > MAX_TIMER_MS) {
    throw new ValidationError(
      `MongoBackend: ${name} must be a positive finite number of milliseconds (at most ${MAX_TIMER_MS}), got ${describe(value)}.`,
    );
  }
  return value;
}

/** The options Keystone's MongoDB backend had that travel in clientOptions, checked up front with clear messages. */
function checkClientOptions(value: unknown): MongoClientOptions {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ValidationError(`MongoBackend: clientOptions must be an object, got ${describe(value)}.`);
  const options = value as Record<string, unknown>;
  const { writeConcern, replicaSet, tls, auth, readPreference } = options;
  if (writeConcern !== undefined) {
    if (typeof writeConcern !== 'object' || writeConcern === null)
      throw new ValidationError(
        `MongoBackend: clientOptions.writeConcern must be an object like { w: 'majority' }, got ${describe(writeConcern)}.`,
      );
    const { w } = writeConcern as { w?: unknown };
    if (
      w !== undefined &&
      !(w === 'majority' || (typeof w === 'string' && w.length > 0) || (typeof w === 'number' && Number.isInteger(w) && w >= 0))
    ) {
      throw new ValidationError(
        `MongoBackend: clientOptions.writeConcern.w must be 'majority', a tag set name or a whole number >= 1, got ${describe(w)}.`,
      );
    }
    checkAcknowledged(w, 'clientOptions.writeConcern');
  }
  if (replicaSet !== undefined && (typeof replicaSet !== 'string' || replicaSet.length === 0)) {
    throw new ValidationError(`MongoBackend: clientOptions.replicaSet must be a non-empty string, got ${describe(replicaSet)}.`);
  }
  if (tls !== undefined && typeof tls !== 'boolean')
    throw new ValidationError(`MongoBackend: clientOptions.tls must be a boolean, got ${describe(tls)}.`);
  if (auth !== undefined) {
    const { username, password } = (typeof auth === 'object' && auth !== null ? auth : {}) as { username?: unknown; password?: unknown };
    if (typeof username !== 'string' || username.length === 0 || (password !== undefined && typeof password !== 'string')) {
      throw new ValidationError('MongoBackend: clientOptions.auth must be { username: string, password?: string }.');
    }
  }
  if (
    readPreference !== undefined &&
    typeof readPreference !== 'string' &&
    (typeof readPreference !== 'object' || readPreference === null)
  ) {
    throw new ValidationError(
      `MongoBackend: clientOptions.readPreference must be a mode name or a ReadPreference, got ${describe(readPreference)}.`,
    );
  }
  return options as MongoClientOptions;
}

function checkAcknowledged(w: unknown, where: string): void {
  if (w === 0 || w === '0') {
    throw new ValidationError(
      `MongoBackend: ${where} asks for unacknowledged writes (w: 0); lock checks need to know whether a write matched, so use w >= 1 or 'majority'.`,
    );
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}
