// Batched JSONEachRow writer with at-least-once semantics that ClickHouse turns into "effectively
// once": every batch carries an insert_deduplication_token, and the tables are ReplacingMergeTree.
import { createHash } from 'node:crypto';
import type { ClickHouseSettings } from '@clickhouse/client';
import type { ClickHouse } from './factory.js';
import { mapClickHouseError } from './errors.js';

export interface FlushInfo {
  table: string;
  rows: number;
  durationMs: number;
  /** The insert_deduplication_token sent with the batch. */
  token: string;
}

export interface BatchWriterOptions {
  ch: Pick<ClickHouse, 'client' | 'table'>;
  /** Unqualified table name in ch's database, e.g. 'alerts'. */
  table: string;
  /** Flush when this many rows are buffered (add() then awaits the flush). */
  maxRows: number;
  /** Flush at most this long after the first buffered row (timer; failures go to onError). */
  maxDelayMs: number;
  onFlush?: (info: FlushInfo) => void;
  /** A timer-driven flush failed. The rows stay buffered and the timer retries after maxDelayMs. */
  onError?: (error: Error, pendingRows: number) => void;
  /** Extra settings for the INSERT. */
  settings?: ClickHouseSettings;
}

export interface FlushOptions {
  /**
   * Identifies exactly the rows buffered right now, e.g. `pos.alerts.v1:3:1200-1299`. Sent as
   * insert_deduplication_token, so a replay of the same batch is dropped by ClickHouse (including
   * what the materialized views would derive from it). It must never be reused for different rows:
   * ClickHouse would drop those as duplicates. Without it the token is a hash of the rows.
   */
  batchId?: string;
}

export interface BatchWriter<Row> {
  /**
   * Buffer a row. When the buffer reaches maxRows this awaits a flush and rejects if it fails;
   * the row is buffered even then — back off and call flush() again, do not add() it twice.
   */
  add(row: Row): Promise<void>;
  /** Insert everything buffered (retrying earlier failed batches first, with their original token). */
  flush(options?: FlushOptions): Promise<void>;
  /** Stop the timer and flush. Rejects (rows kept) if the flush fails; may be called again. */
  close(): Promise<void>;
  /** Rows not yet confirmed written (open buffer + failed batches). */
  readonly pending: number;
}

interface SealedBatch<Row> {
  rows: Row[];
  token: string;
}

export function createBatchWriter<Row extends object>(options: BatchWriterOptions): BatchWriter<Row> {
  const { ch, table, maxRows, maxDelayMs, onFlush, onError, settings } = options;
  if (!Number.isInteger(maxRows) || maxRows < 1) throw new RangeError(`maxRows must be a positive integer, got ${maxRows}`);
  if (!Number.isFinite(maxDelayMs) || maxDelayMs < 0) throw new RangeError(`maxDelayMs must be >= 0, got ${maxDelayMs}`);
  const qualified = ch.table(table);

  let buffer: Row[] = [];
  // Batches that were sealed but not yet confirmed. A failed batch is retried as it was (same rows,
  // same token) before anything newer, so an insert that did land although we saw an error (timeout
  // after commit) is recognised by ClickHouse as the same block and not written twice.
  const sealed: SealedBatch<Row>[] = [];
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  // Flushes run one at a time, in order.
  let chain: Promise<void> = Promise.resolve();

  const seal = (batchId: string | undefined) => {
    if (buffer.length === 0) return;
    const rows = buffer;
    buffer = [];
    sealed.push({ rows, token: batchId ?? contentToken(table, rows) });
  };

  const insertSealed = async () => {
    while (sealed.length > 0) {
      const batch = sealed[0] as SealedBatch<Row>;
      const started = performance.now();
      try {
        await ch.client.insert({
          table: qualified,
          values: batch.rows,
          format: 'JSONEachRow',
          // Always sent, also when the caller gave no batch id: the embedded connection would
          // otherwise be the one place where an unrelated earlier token could apply (see embedded.ts).
          clickhouse_settings: { ...settings, insert_deduplication_token: batch.token },
        });
      } catch (e) {
        throw mapClickHouseError(e);
      }
      sealed.shift();
      onFlush?.({ table, rows: batch.rows.length, durationMs: performance.now() - started, token: batch.token });
    }
  };

  const clearTimer = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };

  const armTimer = () => {
    if (timer !== undefined || closed) return;
    timer = setTimeout(() => {
      timer = undefined;
      flush().catch((e: unknown) => {
        const err = e instanceof Error ? e : new Error(String(e));
        onError?.(err, pendingCount());
        if (pendingCount() > 0) armTimer();
      });
    }, maxDelayMs);
    // The timer must not keep a process alive on its own; shutdown calls close(), which flushes.
    timer.unref();
  };

  const pendingCount = () => buffer.length + sealed.reduce((n, b) => n + b.rows.length, 0);

  const flush = (flushOptions?: FlushOptions): Promise<void> => {
    const run = async () => {
      clearTimer();
      seal(flushOptions?.batchId);
      try {
        await insertSealed();
      } finally {
        if (pendingCount() > 0) armTimer();
      }
    };
    const next = chain.then(run, run);
    chain = next.catch(() => undefined);
    return next;
  };

  return {
    async add(row: Row) {
      if (closed) throw new Error(`batch writer for ${table} is closed`);
      buffer.push(row);
      if (buffer.length >= maxRows) {
        await flush();
        return;
      }
      armTimer();
    },
    flush,
    async close() {
      closed = true;
      clearTimer();
      await flush();
      clearTimer();
    },
    get pending() {
      return pendingCount();
    },
  };
}

/** Deterministic token for a batch without a caller-given id: identical rows -> identical token. */
export function contentToken(table: string, rows: readonly object[]): string {
  const hash = createHash('sha256');
  hash.update(table);
  for (const row of rows) {
    hash.update('\n');
    hash.update(JSON.stringify(row));
  }
  return `sha256:${hash.digest('hex')}`;
}
