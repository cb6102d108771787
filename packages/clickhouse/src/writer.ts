// Batched JSONEachRow writer with at-least-once semantics that ClickHouse turns into "effectively
// once": every batch carries an insert_deduplication_token, and the tables are ReplacingMergeTree.
import { createHash } from 'node:crypto';
import type { ClickHouseSettings } from '@clickhouse/client';
import type { ClickHouse } from './factory.js';
import { ClickHouseDataError, mapClickHouseError } from './errors.js';

export interface FlushInfo {
  table: string;
  /** Rows written (a rejected row is not counted; see `rejected`). */
  rows: number;
  durationMs: number;
  /** The insert_deduplication_token sent with the batch. */
  token: string;
  /** Rows ClickHouse rejected and that were handed to onRejected. */
  rejected: number;
}

/** A row ClickHouse refused on its own (bisected down to one row), with what it was added with. */
export interface RejectedRow<Row, Meta> {
  row: Row;
  meta: Meta | undefined;
  error: ClickHouseDataError;
}

export interface BatchWriterOptions<Row = object, Meta = undefined> {
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
  /**
   * Without it, a batch ClickHouse rejects for its data (ClickHouseDataError) stays buffered and
   * the flush rejects, like any other failure. With it, the writer bisects the batch — inserts each
   * half, recursing into the halves that are rejected — until every row is either written or
   * rejected on its own, then hands the rejected rows here. Only when this resolves is the batch
   * done; if it throws, the batch stays sealed and the next flush repeats the bisection (halves
   * already written carry the same derived tokens and are dropped as duplicates by ClickHouse).
   * It must make each rejected row durable elsewhere (a dead-letter topic), never drop it.
   */
  onRejected?: (rejected: RejectedRow<Row, Meta>[], table: string) => Promise<void>;
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

export interface BatchWriter<Row, Meta = undefined> {
  /**
   * Buffer a row. When the buffer reaches maxRows this awaits a flush and rejects if it fails;
   * the row is buffered even then — back off and call flush() again, do not add() it twice.
   * `meta` travels with the row and is never sent (e.g. its Kafka coordinates, for onRejected).
   */
  add(row: Row, meta?: Meta): Promise<void>;
  /** Insert everything buffered (retrying earlier failed batches first, with their original token). */
  flush(options?: FlushOptions): Promise<void>;
  /** Stop the timer and flush. Rejects (rows kept) if the flush fails; may be called again. */
  close(): Promise<void>;
  /** Rows not yet confirmed written (open buffer + failed batches). */
  readonly pending: number;
}

interface Entry<Row, Meta> {
  row: Row;
  meta: Meta | undefined;
}

interface SealedBatch<Row, Meta> {
  entries: Entry<Row, Meta>[];
  token: string;
}

export function createBatchWriter<Row extends object, Meta = undefined>(options: BatchWriterOptions<Row, Meta>): BatchWriter<Row, Meta> {
  const { ch, table, maxRows, maxDelayMs, onFlush, onError, settings, onRejected } = options;
  if (!Number.isInteger(maxRows) || maxRows < 1) throw new RangeError(`maxRows must be a positive integer, got ${maxRows}`);
  if (!Number.isFinite(maxDelayMs) || maxDelayMs < 0) throw new RangeError(`maxDelayMs must be >= 0, got ${maxDelayMs}`);
  const qualified = ch.table(table);

  let buffer: Entry<Row, Meta>[] = [];
  // Batches that were sealed but not yet confirmed. A failed batch is retried as it was (same rows,
  // same token) before anything newer, so an insert that did land although we saw an error (timeout
  // after commit) is recognised by ClickHouse as the same block and not written twice.
  const sealed: SealedBatch<Row, Meta>[] = [];
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  // Flushes run one at a time, in order.
  let chain: Promise<void> = Promise.resolve();

  const seal = (batchId: string | undefined) => {
    if (buffer.length === 0) return;
    const entries = buffer;
    buffer = [];
    sealed.push({ entries, token: batchId ?? contentToken(table, entries.map((e) => e.row)) });
  };

  const insert = async (rows: Row[], token: string) => {
    try {
      await ch.client.insert({
        table: qualified,
        values: rows,
        format: 'JSONEachRow',
        // The token is always sent, also when the caller gave no batch id: the embedded connection
        // would otherwise be the one place where an unrelated earlier token could apply (see
        // embedded.ts). The partition limit is lifted because a batch's partitions are not ours to
        // choose: tables partition by month of terminal time (transactions, refund_reasons by
        // event_time), and one terminal with a broken clock can send valid events spread over more
        // than 100 months (2000 up to received_time + skew). ClickHouse would refuse that block with
        // 252 TOO_MANY_PARTS, a retriable code, so the sink would back off on it forever. A caller's
        // own `settings` may set another limit.
        clickhouse_settings: { max_partitions_per_insert_block: '0', ...settings, insert_deduplication_token: token },
      });
    } catch (e) {
      throw mapClickHouseError(e);
    }
  };

  /**
   * Inserts entries[from, to) under `token`; on a data rejection, splits the range in two and
   * recurses, each half under a token derived from the batch token and its index range. The tokens
   * are a function of the sealed batch only, so a retry of the same batch after a failure half-way
   * (ClickHouse went away during the bisection) re-sends the halves that already landed with the
   * same tokens, and ClickHouse drops them as duplicates. ClickHouse's "(at row N)" in the message
   * is not used to jump to the row: with parallel parsing N can be relative to a chunk.
   * Returns rows written; rejected single rows are pushed to `rejected`.
   */
  const insertOrBisect = async (batch: SealedBatch<Row, Meta>, from: number, to: number, token: string, rejected: RejectedRow<Row, Meta>[]): Promise<number> => {
    const entries = batch.entries.slice(from, to);
    try {
      await insert(entries.map((e) => e.row), token);
      return entries.length;
    } catch (e) {
      if (!onRejected || !(e instanceof ClickHouseDataError)) throw e;
      if (entries.length === 1) {
        const only = entries[0] as Entry<Row, Meta>;
        rejected.push({ row: only.row, meta: only.meta, error: e });
        return 0;
      }
      const mid = from + Math.ceil((to - from) / 2);
      const left = await insertOrBisect(batch, from, mid, `${batch.token}#${from}-${mid}`, rejected);
      const right = await insertOrBisect(batch, mid, to, `${batch.token}#${mid}-${to}`, rejected);
      return left + right;
    }
  };

  const insertSealed = async () => {
    while (sealed.length > 0) {
      const batch = sealed[0] as SealedBatch<Row, Meta>;
      const started = performance.now();
      const rejected: RejectedRow<Row, Meta>[] = [];
      const written = await insertOrBisect(batch, 0, batch.entries.length, batch.token, rejected);
      // The rejected rows must be safe elsewhere before the batch counts as done (no loss).
      if (rejected.length > 0) await onRejected?.(rejected, table);
      sealed.shift();
      onFlush?.({ table, rows: written, durationMs: performance.now() - started, token: batch.token, rejected: rejected.length });
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

  const pendingCount = () => buffer.length + sealed.reduce((n, b) => n + b.entries.length, 0);

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
    async add(row: Row, meta?: Meta) {
      if (closed) throw new Error(`batch writer for ${table} is closed`);
      buffer.push({ row, meta });
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
