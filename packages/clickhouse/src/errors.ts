// Error classes of the ClickHouse layer and the mapping from what @clickhouse/client (HTTP) or the
// chDB connection (embedded) throws. Shape mirrors the pipeline's classes (DESIGN.md "Errors have
// classes"): `kind` is 'retriable' (back off, keep offsets, try again) or 'fatal'. This package does
// not import @tillwatch/stream (sibling, not a dependency); services translate by `kind`/`retriable`.

export abstract class ClickHouseLayerError extends Error {
  abstract readonly kind: 'retriable' | 'fatal';
  get retriable(): boolean {
    return this.kind === 'retriable';
  }
}

/**
 * ClickHouse cannot be reached or is temporarily unable to serve: connection refused/reset,
 * timeouts, DNS failures, 5xx without a ClickHouse error body, and server errors that are about
 * load rather than the statement (TOO_MANY_PARTS, MEMORY_LIMIT_EXCEEDED, ...). Retry with backoff.
 */
export class ClickHouseUnavailableError extends ClickHouseLayerError {
  override name = 'ClickHouseUnavailableError';
  readonly kind = 'retriable' as const;
  /** ClickHouse error code when the server answered with one, else the Node error code (ECONNREFUSED, ...). */
  readonly code: string | undefined;
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(message, options);
    this.code = options?.code;
  }
}

/** The server (or chDB) rejected the statement: syntax, unknown table, type mismatch, bad data... */
export class ClickHouseQueryError extends ClickHouseLayerError {
  override name = 'ClickHouseQueryError';
  readonly kind = 'fatal' as const;
  /** Numeric ClickHouse error code, e.g. 60 for UNKNOWN_TABLE. */
  readonly code: number;
  /** Symbolic ClickHouse error name, e.g. UNKNOWN_TABLE, when known. */
  readonly type: string | undefined;
  constructor(message: string, options: { code: number; type?: string; cause?: unknown }) {
    super(message, { cause: options.cause });
    this.code = options.code;
    this.type = options.type;
  }
}

/**
 * ClickHouse rejected the DATA of an insert, not the statement or the server's state: a value that
 * does not parse into or fit its column (an Enum8 symbol the table does not know, a malformed
 * DateTime, a string in a number column, a CHECK constraint). Retrying the same rows fails again
 * forever; other rows of the same batch may be fine. A subclass of ClickHouseQueryError (it is
 * fatal for the statement as sent), so callers that only know that class keep working; the batch
 * writer uses it to isolate the offending rows (see writer.ts `onRejected`).
 */
export class ClickHouseDataError extends ClickHouseQueryError {
  override name = 'ClickHouseDataError';
}

/** Invalid options (no url and no path, bad database name, ...). */
export class ClickHouseConfigError extends ClickHouseLayerError {
  override name = 'ClickHouseConfigError';
  readonly kind = 'fatal' as const;
}

/** A second embedded data directory was requested in a process that already has one open. */
export class EmbeddedPathConflictError extends ClickHouseLayerError {
  override name = 'EmbeddedPathConflictError';
  readonly kind = 'fatal' as const;
  constructor(readonly openPath: string, readonly requestedPath: string) {
    super(
      `embedded ClickHouse (chDB) already has data directory ${openPath} open in this process; ` +
        `cannot open ${requestedPath}. chDB binds one data directory per process: reuse the same path ` +
        `(isolate by database name) or close every handle on the first one, or set CLICKHOUSE_URL to use a server.`,
    );
  }
}

/** An applied migration file changed afterwards. Never edit an applied migration: add a new one. */
export class MigrationChecksumError extends ClickHouseLayerError {
  override name = 'MigrationChecksumError';
  readonly kind = 'fatal' as const;
  constructor(
    readonly version: number,
    readonly migration: string,
    readonly appliedChecksum: string,
    readonly fileChecksum: string,
  ) {
    super(
      `migration ${migration} was applied with checksum ${appliedChecksum.slice(0, 12)}… but the file now has ` +
        `${fileChecksum.slice(0, 12)}…; applied migrations must not change — revert the edit and add a new migration`,
    );
  }
}

/** Migration files are malformed (bad name, duplicate version, unparsable SQL). */
export class MigrationFileError extends ClickHouseLayerError {
  override name = 'MigrationFileError';
  readonly kind = 'fatal' as const;
}

// Server error codes that say "not now" rather than "never" (ClickHouse src/Common/ErrorCodes.cpp).
const RETRIABLE_SERVER_CODES = new Map<number, string>([
  [3, 'UNEXPECTED_END_OF_FILE'],
  [159, 'TIMEOUT_EXCEEDED'],
  [164, 'READONLY'], // replica temporarily read-only
  [202, 'TOO_MANY_SIMULTANEOUS_QUERIES'],
  [203, 'NO_FREE_CONNECTION'],
  [209, 'SOCKET_TIMEOUT'],
  [210, 'NETWORK_ERROR'],
  [236, 'ABORTED'],
  [241, 'MEMORY_LIMIT_EXCEEDED'],
  [242, 'TABLE_IS_READ_ONLY'],
  [252, 'TOO_MANY_PARTS'],
  [285, 'TOO_FEW_LIVE_REPLICAS'],
  [319, 'UNKNOWN_STATUS_OF_INSERT'],
  [425, 'SYSTEM_ERROR'],
  [439, 'CANNOT_SCHEDULE_TASK'],
  [745, 'SERVER_OVERLOADED'],
  [999, 'KEEPER_EXCEPTION'],
]);

// Server error codes that reject a VALUE of the inserted data (src/Common/ErrorCodes.cpp). The core is
// ClickHouse's own list of row-level parse errors, `isParseError()` in src/Formats/ParseError.cpp
// (the errors `input_format_allow_errors_num` may skip row by row); to it are added the errors of a
// value that parsed but does not fit or convert (TYPE_MISMATCH, CANNOT_CONVERT_TYPE,
// VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE, CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN, DECIMAL_OVERFLOW,
// CANNOT_PARSE_TEXT) and a violated CHECK constraint. Left out on purpose although isParseError()
// lists it: 33 CANNOT_READ_ALL_DATA, which over HTTP also means a request body cut short by the
// network, so it stays a plain (non-data) query error. Statement errors (UNKNOWN_TABLE,
// NO_SUCH_COLUMN_IN_TABLE, SYNTAX_ERROR, ...) are not here: no row of the batch is at fault.
const DATA_REJECTION_CODES = new Map<number, string>([
  [6, 'CANNOT_PARSE_TEXT'],
  [25, 'CANNOT_PARSE_ESCAPE_SEQUENCE'],
  [26, 'CANNOT_PARSE_QUOTED_STRING'],
  [27, 'CANNOT_PARSE_INPUT_ASSERTION_FAILED'],
  [38, 'CANNOT_PARSE_DATE'],
  [41, 'CANNOT_PARSE_DATETIME'],
  [53, 'TYPE_MISMATCH'],
  [69, 'ARGUMENT_OUT_OF_BOUND'], // Decimal values (ParseError.cpp)
  [70, 'CANNOT_CONVERT_TYPE'],
  [72, 'CANNOT_PARSE_NUMBER'],
  [117, 'INCORRECT_DATA'],
  [130, 'CANNOT_READ_ARRAY_FROM_TEXT'],
  [131, 'TOO_LARGE_STRING_SIZE'],
  [321, 'VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE'],
  [349, 'CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN'],
  [376, 'CANNOT_PARSE_UUID'],
  [407, 'DECIMAL_OVERFLOW'],
  [441, 'CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING'],
  [467, 'CANNOT_PARSE_BOOL'],
  [469, 'VIOLATED_CONSTRAINT'],
  [563, 'CANNOT_READ_MAP_FROM_TEXT'],
  [632, 'UNEXPECTED_DATA_AFTER_PARSED_VALUE'],
  [675, 'CANNOT_PARSE_IPV4'],
  [676, 'CANNOT_PARSE_IPV6'],
  [691, 'UNKNOWN_ELEMENT_OF_ENUM'],
]);

/** How an error from ClickHouse should be handled by a writer. */
export type ClickHouseErrorClass = 'retriable' | 'data' | 'fatal';

/**
 * retriable: back off and retry the same batch (ClickHouse unreachable or overloaded).
 * data: ClickHouse rejected values of the batch; find and set aside the offending rows.
 * fatal: the statement, schema or configuration is wrong; no row is at fault.
 * Anything not from ClickHouse (a bug) is fatal.
 */
export function classifyClickHouseError(e: unknown): ClickHouseErrorClass {
  const mapped = mapClickHouseError(e);
  if (mapped instanceof ClickHouseUnavailableError) return 'retriable';
  if (mapped instanceof ClickHouseDataError) return 'data';
  return 'fatal';
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
]);

// Messages the HTTP client produces without a code: its own request timeout ("Timeout error."),
// a dropped keep-alive socket, or a proxy's 502/503/504 page.
const NETWORK_MESSAGE = /timeout error|socket hang up|request timed out|service unavailable|bad gateway|gateway time-?out|ECONNRESET|ECONNREFUSED/i;

interface ErrorLike {
  message?: unknown;
  code?: unknown;
  type?: unknown;
  name?: unknown;
  cause?: unknown;
}

function asErrorLike(e: unknown): ErrorLike | undefined {
  return typeof e === 'object' && e !== null ? (e as ErrorLike) : undefined;
}

/**
 * Map anything thrown by the client into this layer's classes. Matching is structural on purpose:
 * the HTTP client ships its own copy of `ClickHouseError` while chDB throws the one from
 * `@clickhouse/client-common`, so `instanceof` would miss one of them. Errors that are not from
 * ClickHouse (a TypeError in our code) are returned unchanged.
 */
export function mapClickHouseError(e: unknown): Error {
  if (e instanceof ClickHouseLayerError) return e;
  const err = asErrorLike(e);
  const message = typeof err?.message === 'string' ? err.message.trim() : String(e);
  const code = typeof err?.code === 'string' || typeof err?.code === 'number' ? String(err.code) : undefined;

  // A ClickHouse server/engine error: `Code: N. DB::Exception: ... (TYPE)` parsed into code + type.
  if (code !== undefined && /^\d+$/.test(code) && (err?.name === 'ClickHouseError' || typeof err?.type === 'string')) {
    const numeric = Number(code);
    const type = typeof err?.type === 'string' ? err.type : (RETRIABLE_SERVER_CODES.get(numeric) ?? DATA_REJECTION_CODES.get(numeric));
    const text = `ClickHouse error ${numeric}${type ? ` (${type})` : ''}: ${message}`;
    if (RETRIABLE_SERVER_CODES.has(numeric)) return new ClickHouseUnavailableError(text, { cause: e, code });
    if (DATA_REJECTION_CODES.has(numeric)) return new ClickHouseDataError(text, { code: numeric, ...(type ? { type } : {}), cause: e });
    return new ClickHouseQueryError(text, { code: numeric, ...(type ? { type } : {}), cause: e });
  }
  if (code !== undefined && NETWORK_CODES.has(code)) {
    return new ClickHouseUnavailableError(`ClickHouse unreachable (${code}): ${message}`, { cause: e, code });
  }
  const causeCode = asErrorLike(err?.cause)?.code;
  if (typeof causeCode === 'string' && NETWORK_CODES.has(causeCode)) {
    return new ClickHouseUnavailableError(`ClickHouse unreachable (${causeCode}): ${message}`, { cause: e, code: causeCode });
  }
  if (e instanceof Error && NETWORK_MESSAGE.test(message)) {
    return new ClickHouseUnavailableError(`ClickHouse unavailable: ${message}`, { cause: e });
  }
  return e instanceof Error ? e : new Error(message);
}

/** Run `fn`, rethrowing whatever it throws through {@link mapClickHouseError}. */
export async function mapErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw mapClickHouseError(e);
  }
}
