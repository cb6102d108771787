// How the sink writes one flush and what it does when ClickHouse says no (DESIGN.md, "Errors have
// classes"): unavailable or overloaded → back off and try again for as long as it takes; a row's
// values rejected → already handled inside the writer (bisection, onRejected → DLQ); the statement
// itself rejected (unknown table, missing column, authentication, syntax: no row is at fault) →
// a few bounded retries, then a FatalError that stops the sink before anything is committed.
import { ClickHouseLayerError, ClickHouseQueryError, classifyClickHouseError } from '@tillwatch/clickhouse';
import { FatalError } from '@tillwatch/stream';

export interface FlushRetryPolicy {
  /**
   * Attempts a flush gets while ClickHouse rejects the statement (a fatal error) before the sink
   * gives up; 1 = give up at once. A few cover a table being dropped and re-created by a migration
   * running at the same moment, or a user being re-created; anything longer only delays the one
   * clear message while the pipeline stands still. Retriable errors do not count.
   */
  fatalAttempts: number;
  /** Wait before the next attempt, after `attempt` (0-based) failed. */
  backoffMs: (attempt: number) => number;
}

/** 5 attempts, 200 ms doubling: a fatal error is reported after about 3 s (200+400+800+1600 ms). */
export const DEFAULT_FLUSH_RETRY: FlushRetryPolicy = {
  fatalAttempts: 5,
  backoffMs: (attempt) => Math.min(30_000, 200 * 2 ** attempt),
};

/**
 * retriable: back off and try again, indefinitely (offsets kept).
 * fatal: a ClickHouse error no row is at fault for; bounded retries, then stop.
 * Only errors of the ClickHouse layer can be fatal here. Anything else reaching the flush comes from
 * sending dead letters to Kafka (a broker or topic problem) and keeps being retried, as before.
 * A data rejection (ClickHouseDataError) never leaves the sink's writers (they bisect it); one that
 * did would fail the same way on every attempt, so it is treated as fatal rather than looped on.
 */
export function writeFailureKind(e: unknown): 'retriable' | 'fatal' {
  if (!(e instanceof ClickHouseLayerError)) return 'retriable';
  return classifyClickHouseError(e) === 'retriable' ? 'retriable' : 'fatal';
}

// ClickHouse error codes (src/Common/ErrorCodes.cpp) grouped by what an operator does about them.
const MISSING_OBJECT = new Set([60 /* UNKNOWN_TABLE */, 81 /* UNKNOWN_DATABASE */]);
const SCHEMA_DRIFT = new Set([8 /* THERE_IS_NO_COLUMN */, 10 /* NOT_FOUND_COLUMN_IN_BLOCK */, 16 /* NO_SUCH_COLUMN_IN_TABLE */, 47 /* UNKNOWN_IDENTIFIER */]);
const ACCESS = new Set([192 /* UNKNOWN_USER */, 193 /* WRONG_PASSWORD */, 194 /* REQUIRED_PASSWORD */, 291 /* DATABASE_ACCESS_DENIED */, 497 /* ACCESS_DENIED */, 516 /* AUTHENTICATION_FAILED */]);

/** What to do about a fatal write error, for the message (pure). */
export function fatalWriteRemedy(code: number | undefined, qualifiedTable: string): string {
  if (code !== undefined && MISSING_OBJECT.has(code)) {
    return `run \`tillwatch provision\` (ClickHouse migrations) against this database and restart the sink; if schema_migrations already lists the migrations that build ${qualifiedTable}, it was dropped by hand: delete their rows from schema_migrations and provision again (services/sink/README.md)`;
  }
  if (code !== undefined && SCHEMA_DRIFT.has(code)) {
    return `the table does not have the columns the migrations define: run \`tillwatch provision\`, and if it applies nothing, compare ${qualifiedTable} with schemas/clickhouse (changed by hand?)`;
  }
  if (code !== undefined && ACCESS.has(code)) {
    return `check CLICKHOUSE_USER / CLICKHOUSE_PASSWORD and that the user may INSERT into ${qualifiedTable}`;
  }
  return 'the statement itself is wrong (a sink bug, or a ClickHouse version it does not support): report it with this message';
}

/**
 * The sink's fatal write error: a FatalError of the pipeline (its owner handles it as the detector's
 * owner does: exit non-zero with the message), naming the table, ClickHouse's code and name, and the
 * remedy. The offsets of the rows it could not write were not committed.
 */
export class FatalWriteError extends FatalError {
  override name = 'FatalWriteError';
  /** ClickHouse's numeric code and symbolic name, when ClickHouse answered with one. */
  readonly code: number | undefined;
  readonly type: string | undefined;
  constructor(
    readonly table: string,
    readonly qualifiedTable: string,
    error: Error,
    readonly attempts: number,
  ) {
    const q = error instanceof ClickHouseQueryError ? error : undefined;
    super(
      `cannot write to ClickHouse table ${qualifiedTable}: ${error.message.split('\n')[0]} (${attempts} attempt${attempts === 1 ? '' : 's'}). ` +
        `No row is at fault, so none was dead-lettered, and the offsets of the unwritten rows are not committed: a restarted sink reads them again. ` +
        `To fix: ${fatalWriteRemedy(q?.code, qualifiedTable)}.`,
      { cause: error },
    );
    this.code = q?.code;
    this.type = q?.type;
  }
}

export interface WriteFailure {
  error: Error;
  /** The table whose flush failed; undefined when sending dead letters failed. */
  table: string | undefined;
  kind: 'retriable' | 'fatal';
  attempt: number;
  /** Backoff before the next attempt; undefined when the sink gives up. */
  waitMs: number | undefined;
}

export interface FlushWithRetryOptions {
  /** Writers by table, flushed in this order; a writer keeps its rows when its flush fails. */
  writers: ReadonlyMap<string, { flush(): Promise<void> }>;
  /** Runs once every table is written (the sink sends the row mapper's dead letters here). */
  afterWrites?: () => Promise<void>;
  /** `db`.`table` for messages. */
  qualify: (table: string) => string;
  policy?: FlushRetryPolicy;
  /** Waits out a backoff (the sink sleeps and heartbeats). */
  wait: (ms: number) => Promise<void>;
  /** Every failed attempt, before waiting or giving up (metrics, logs). */
  onFailure?: (failure: WriteFailure) => void;
}

/**
 * Flushes every writer, then `afterWrites`, retrying the whole sequence with backoff (tables already
 * written have nothing buffered, so a retry only re-sends what failed). Resolves once everything is
 * written. Rejects with a FatalWriteError when ClickHouse rejected the statement on
 * `policy.fatalAttempts` attempts; the writers keep the rows, and the caller must not commit.
 */
export async function flushWithRetry(o: FlushWithRetryOptions): Promise<void> {
  const policy = o.policy ?? DEFAULT_FLUSH_RETRY;
  let fatalFailures = 0;
  for (let attempt = 0; ; attempt++) {
    let table: string | undefined;
    try {
      for (const [t, w] of o.writers) {
        table = t;
        await w.flush();
      }
      table = undefined;
      await o.afterWrites?.();
      return;
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      const kind = writeFailureKind(error);
      const giveUp = kind === 'fatal' && ++fatalFailures >= policy.fatalAttempts;
      const waitMs = giveUp ? undefined : policy.backoffMs(attempt);
      o.onFailure?.({ error, table, kind, attempt, waitMs });
      if (waitMs === undefined) throw new FatalWriteError(table ?? 'unknown', table ? o.qualify(table) : 'unknown', error, fatalFailures);
      await o.wait(waitMs);
    }
  }
}
