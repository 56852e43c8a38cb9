/**
 * PostgresBackend's connection to its server: the pool (given or built), the table's schema,
 * statements run on pooled connections, and the connection that listens for releases.
 */

import pg, { type Client, type ClientConfig, type Pool, type QueryResult, type QueryResultRow } from 'pg';
import type { PostgresBackendOptions, ResolvedPostgresBackendOptions } from '../postgres-backend-options.js';
import { isConnectionFailure } from './errors.js';
import { decodeBytea, type Statement } from './sql.js';

/** SQLSTATEs of two sessions creating the same table or index at once (the loser retries). */
const CREATED_MEANWHILE = new Set(['23505', '42P07', '42710']);

/**
 * The result parsers of the backend's statements, fixed per query so that parsers an
 * application installs on pg's global `types` (a common change for `bytea` or `int8`) never
 * change what the backend reads. Every column it selects is one of these types.
 */
const TYPES = {
  getTypeParser: (oid: number): ((text: string) => unknown) => {
    switch (oid) {
      case 17: // bytea
        return decodeBytea;
      case 16: // bool
        return (text) => text === 't';
      case 23: // int4
      case 701: // float8
        return Number;
      default:
        return (text) => text;
    }
  },
} as unknown as NonNullable<pg.QueryConfig['types']>;

/** Options of {@link Database}. */
export interface DatabaseOptions {
  readonly options: PostgresBackendOptions;
  readonly resolved: ResolvedPostgresBackendOptions;
  /** The table's `CREATE` statement (run once before the first statement, unless `createTable` is off). */
  readonly schema: string;
}

/**
 * The backend's pool and what it runs on it. Statements are prepared per connection under
 * their name; a statement that fails because the connection went away drops that
 * connection from the pool.
 */
export class Database {
  /** The pool in use (the given one, or the one built from `url`). */
  readonly pool: Pool;
  /** Whether the backend built the pool (and so ends it on close). */
  readonly owned: boolean;
  /** The connection options of the pool, for the listening connection. */
  readonly #clientConfig: ClientConfig;
  readonly #schema: string | undefined;
  #schemaReady: Promise<void> | undefined;

  constructor({ options, resolved, schema }: DatabaseOptions) {
    if (options.pool !== undefined) {
      this.pool = options.pool;
      this.owned = false;
      // The pool's own options object: its password is a non-enumerable property a copy would lose.
      this.#clientConfig = options.pool.options;
    } else {
      const config: pg.PoolConfig = {
        ...options.poolOptions,
        ...(options.url === undefined ? {} : { connectionString: options.url }),
        connectionTimeoutMillis: resolved.serverTimeoutMs,
        statement_timeout: resolved.serverTimeoutMs,
        // Idle pooled connections must not keep the process alive.
        allowExitOnIdle: true,
      };
      this.pool = new pg.Pool(config);
      this.owned = true;
      this.#clientConfig = config;
      // An idle connection the server ends (a restart) is reported here; the next statement reconnects.
      this.pool.on('error', noop);
    }
    this.#schema = resolved.createTable ? schema : undefined;
  }

  /**
   * Runs `statement` with `values` on a pooled connection, once the schema exists.
   * `onLost` is called when the statement was sent and the connection then failed: it may
   * or may not have run.
   */
  async query<R extends QueryResultRow>(statement: Statement, values: readonly unknown[], onLost?: () => void): Promise<QueryResult<R>> {
    await this.ready();
    const client = await this.pool.connect();
    let broken: Error | undefined;
    // pg reports a broken connection on the client as well as failing its query: a checked-out
    // client has no listener of the pool's, and an unheard 'error' event would end the process.
    const onError = (error: Error): void => {
      broken ??= error;
    };
    client.on('error', onError);
    try {
      return await client.query<R>({ name: statement.name, text: statement.text, values: values as unknown[], types: TYPES });
    } catch (error) {
      if (isConnectionFailure(error)) {
        broken = error instanceof Error ? error : new Error(String(error));
        onLost?.();
      }
      throw error;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  /** Creates the table when it is missing, once (again after a failure). */
  ready(): Promise<void> {
    const schema = this.#schema;
    if (schema === undefined) return Promise.resolve();
    this.#schemaReady ??= this.#createSchema(schema).catch((error: unknown) => {
      this.#schemaReady = undefined;
      throw error;
    });
    return this.#schemaReady;
  }

  /** A new, unconnected client with the pool's connection options, for `LISTEN`. */
  listenerClient(connectTimeoutMs: number): Client {
    return new pg.Client({ ...copyConfig(this.#clientConfig), connectionTimeoutMillis: connectTimeoutMs, keepAlive: true });
  }

  /** Ends the pool if the backend built it. */
  async end(): Promise<void> {
    if (this.owned) await this.pool.end();
  }

  async #createSchema(schema: string): Promise<void> {
    for (let round = 0; ; round++) {
      try {
        await this.pool.query(schema);
        return;
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (round > 0 || typeof code !== 'string' || !CREATED_MEANWHILE.has(code)) throw error;
      }
    }
  }
}

/** The connection options of `config`, the non-enumerable password included. */
function copyConfig(config: ClientConfig): ClientConfig {
  const copy: ClientConfig = { ...config };
  if (config.password !== undefined) copy.password = config.password;
  return copy;
}

function noop(): void {}
