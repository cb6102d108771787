// createClickHouse: one interface over a real server (HTTP) and embedded chDB.
import { createClient, ClickHouseLogLevel, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client';
import { openEmbedded } from './embedded.js';
import { ClickHouseConfigError, ClickHouseUnavailableError, mapClickHouseError, mapErrors } from './errors.js';
import { isPlainIdentifier, qualifiedName, quoteIdentifier } from './sql.js';

export interface ClickHouseOptions {
  /** Set = HTTP to that server (e.g. http://localhost:8123). Unset = embedded chDB at `path`. */
  url?: string | URL;
  /** Embedded data directory (one per process). Ignored when `url` is set. `':memory:'` = a temp dir. */
  path?: string;
  /** Database this handle works in; created by ensureDatabase()/migrate(). Plain identifier. */
  database: string;
  username?: string;
  password?: string;
  /** HTTP request timeout. The embedded connection has no per-request timeout. */
  requestTimeoutMs?: number;
  /** Extra settings sent with every request (merged over the defaults below). */
  settings?: ClickHouseSettings;
}

export interface ClickHouse {
  /** The official client. Over embedded chDB it runs in-process; the API is the same. */
  readonly client: ClickHouseClient;
  readonly database: string;
  readonly kind: 'http' | 'embedded';
  /** Embedded data directory (absolute), or undefined over HTTP. */
  readonly path: string | undefined;
  /** `db`.`name`: fully qualified, back-quoted; the form that works the same on both backends. */
  table(name: string): string;
  /** Server (or libchdb engine) version, e.g. 26.7.2.1. */
  version(): Promise<string>;
  /** Resolves when ClickHouse answers; rejects with ClickHouseUnavailableError otherwise. */
  ping(): Promise<void>;
  /** CREATE DATABASE IF NOT EXISTS, and make it the current database for unqualified names. */
  ensureDatabase(): Promise<void>;
  /** Close the client (and release the embedded data directory). Idempotent. */
  close(): Promise<void>;
}

/**
 * Settings on every request, on both backends, so results look the same whichever one answers:
 * - output_format_json_quote_64bit_integers=0: Int64/UInt64 as JSON numbers. Our 64-bit columns
 *   (amounts, offsets, sequences, epoch ms, counts) stay far below 2^53, and the contract types
 *   are numbers. Server and chDB defaults differ across versions, so pin it.
 * - date_time_output_format=simple: 'YYYY-MM-DD hh:mm:ss.sss' (UTC columns), what rows.ts parses.
 */
const COMMON_SETTINGS: ClickHouseSettings = {
  output_format_json_quote_64bit_integers: 0,
  date_time_output_format: 'simple',
};

/**
 * chDB's default profile has async_insert=1 (a server's default is 0). Async inserts are queued
 * and deduplicated by different rules (async_insert_deduplicate, off by default), so
 * `insert_deduplication_token` would not protect replays. Our writer batches already: insert
 * synchronously, as a server does by default.
 */
const EMBEDDED_SETTINGS: ClickHouseSettings = { async_insert: 0 };

export function createClickHouse(options: ClickHouseOptions): ClickHouse {
  const { database } = options;
  if (!isPlainIdentifier(database)) {
    throw new ClickHouseConfigError(`invalid ClickHouse database name ${JSON.stringify(database)}: expected [A-Za-z_][A-Za-z0-9_]*`);
  }
  const url = options.url === undefined || options.url === '' ? undefined : String(options.url);
  if (url !== undefined) return createHttp({ ...options, url });
  if (options.path === undefined || options.path === '') {
    throw new ClickHouseConfigError('ClickHouse needs either url (a server, CLICKHOUSE_URL) or path (embedded chDB data directory, CLICKHOUSE_PATH)');
  }
  return createEmbedded({ ...options, path: options.path });
}

function common(client: ClickHouseClient, database: string) {
  const version = () =>
    mapErrors(async () => {
      const rs = await client.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' });
      const rows = await rs.json<{ v: string }>();
      return rows[0]?.v ?? 'unknown';
    });
  const ping = async () => {
    const r = await client.ping({ select: true });
    if (!r.success) {
      const mapped = mapClickHouseError(r.error);
      throw mapped instanceof ClickHouseUnavailableError ? mapped : new ClickHouseUnavailableError(`ClickHouse ping failed: ${mapped.message}`, { cause: r.error });
    }
  };
  return { version, ping, table: (name: string) => qualifiedName(database, name) };
}

function createHttp(options: ClickHouseOptions & { url: string }): ClickHouse {
  const base = {
    url: options.url,
    ...(options.username !== undefined ? { username: options.username } : {}),
    ...(options.password !== undefined ? { password: options.password } : {}),
    ...(options.requestTimeoutMs !== undefined ? { request_timeout: options.requestTimeoutMs } : {}),
    clickhouse_settings: { ...COMMON_SETTINGS, ...options.settings },
    application: 'tillwatch',
    // Errors are thrown (mapped) to the caller, which logs them through the service logger;
    // the client's own console logger would print every failure a second time.
    log: { level: ClickHouseLogLevel.OFF },
  };
  const client = createClient({ ...base, database: options.database });
  let closed = false;
  return {
    client,
    database: options.database,
    kind: 'http',
    path: undefined,
    ...common(client, options.database),
    async ensureDatabase() {
      // The main client sends `database=<db>` with every request, which the server rejects while
      // the database does not exist yet; create it through a short-lived client on `default`.
      const bootstrap = createClient({ ...base, database: 'default' });
      try {
        await mapErrors(() => bootstrap.command({ query: `CREATE DATABASE IF NOT EXISTS ${quoteIdentifier(options.database)}` }));
      } finally {
        await bootstrap.close();
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await client.close();
    },
  };
}

function createEmbedded(options: ClickHouseOptions & { path: string }): ClickHouse {
  const handle = openEmbedded(options.path);
  // The client's `database` option is an HTTP URL parameter; the chDB connection ignores it, and
  // its session starts in `default`. ensureDatabase() issues `USE`, which sticks to the session.
  const client = createClient({
    connection: handle.connection,
    clickhouse_settings: { ...COMMON_SETTINGS, ...EMBEDDED_SETTINGS, ...options.settings },
    log: { level: ClickHouseLogLevel.OFF },
  });
  let closed = false;
  return {
    client,
    database: options.database,
    kind: 'embedded',
    path: handle.path,
    ...common(client, options.database),
    async ensureDatabase() {
      const db = quoteIdentifier(options.database);
      await mapErrors(() => client.command({ query: `CREATE DATABASE IF NOT EXISTS ${db}` }));
      await mapErrors(() => client.command({ query: `USE ${db}` }));
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await client.close();
      } finally {
        await handle.release();
      }
    },
  };
}
