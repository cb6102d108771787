// Inputs of `tillwatch backtest --compare`: a JSON-lines file or the transactions stored in
// ClickHouse, both STREAMED in batches (bounded memory whatever the input size).
import { open } from 'node:fs/promises';
import { ContractColumns, fromTransactionRow, toDateTime64, type ClickHouse } from '@tillwatch/clickhouse';
import { createBacktest, createLineParser, defaultRulesConfig, isRejected, type BacktestInput, type RulesConfig } from '@tillwatch/rules';
import type { Transaction } from '@tillwatch/schemas';

export interface Rejected {
  line: number;
  reason: string;
  raw: string;
}

const CHUNK = 4 << 20;

/**
 * A JSON-lines file in arrival order, read in 4 MiB chunks, line by line exactly as `tillwatch
 * backtest` reads it: the engine package's byte-level parser with JSON.parse as the fallback, then the
 * backtest's own validation (createBacktest's validate/parse: a line with "type": "heartbeat" is a
 * heartbeat, any other a transaction; the same rejects and reasons, with `config`'s
 * engine.max_clock_skew). A line that is not a valid record is reported through onReject (never fatal,
 * never silent).
 */
export async function* fileSource(path: string, onReject: (r: Rejected) => void, config: RulesConfig = defaultRulesConfig()): AsyncGenerator<BacktestInput[]> {
  // Used for its line validation only (its engine stays empty).
  const lines = createBacktest(config);
  const fh = await open(path, 'r');
  const fast = createLineParser((b, s, e) => (b as Buffer).toString('latin1', s, e));
  let buf = Buffer.allocUnsafe(CHUNK);
  let carry = 0;
  let lineNo = 0;
  try {
    for (;;) {
      if (carry === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, carry);
        buf = bigger;
      }
      const { bytesRead: n } = await fh.read(buf, carry, buf.length - carry, null);
      const end = carry + n;
      const out: BacktestInput[] = [];
      const handle = (s: number, e: number) => {
        const text = () => buf.toString('utf8', s, e);
        const v = fast(buf, s, e);
        const r = v !== null ? lines.validate(v, ++lineNo, text) : lines.parse(text(), ++lineNo);
        if (r === null) return;
        if (isRejected(r)) onReject(r);
        else out.push(r);
      };
      if (n === 0) {
        if (end > 0) handle(0, end);
        if (out.length) yield out;
        return;
      }
      const lastNl = buf.lastIndexOf(10, end - 1);
      if (lastNl < 0) {
        carry = end;
        continue;
      }
      for (let p = 0; p <= lastNl; ) {
        const q = buf.indexOf(10, p);
        handle(p, q);
        p = q + 1;
      }
      carry = end - lastNl - 1;
      // Copy the unfinished line to the front before yielding: the consumer never sees buf.
      buf.copy(buf, 0, lastNl + 1, end);
      if (out.length) yield out;
    }
  } finally {
    await fh.close();
  }
}

export interface ClickHouseSourceOptions {
  /** Transactions received at or after this time (epoch ms). */
  sinceMs: number;
  merchant?: string;
  /** Rows per page. Default 50 000. */
  pageSize?: number;
}

/**
 * The transactions table in received-time order (ties by event_id: the original arrival order of
 * two events received in the same millisecond is not stored), read page by page with a keyset
 * (received_time, event_id) > last: one bounded query at a time on the HTTP server and on embedded
 * chDB alike, so nothing is ever loaded whole. A row written twice (a replay into the
 * ReplacingMergeTree not merged yet) counts once: its copies share (received_time, event_id), so they
 * are adjacent in this order and dropped here, and the strict keyset skips a copy that would start the
 * next page. (FINAL on every page merges the whole table each time: 3.5k vs 5.3k events/s measured
 * on 1.2M rows, both under heavy machine load; see RULES.md.)
 */
export async function* clickhouseSource(ch: ClickHouse, o: ClickHouseSourceOptions): AsyncGenerator<Transaction[]> {
  const pageSize = o.pageSize ?? 100_000;
  let lastId = '';
  let after: { rt: string; id: string } | null = null;
  for (;;) {
    const where = ['received_time >= {since:DateTime64(3)}'];
    if (o.merchant !== undefined) where.push('merchant_id = {merchant:String}');
    if (after) where.push('(received_time, event_id) > ({rt:DateTime64(3)}, {id:String})');
    const query = `SELECT ${ContractColumns.transactions} FROM ${ch.table('transactions')} WHERE ${where.join(' AND ')} ORDER BY received_time, event_id LIMIT {n:UInt32}`;
    const rs = await ch.client.query({
      query,
      query_params: { since: toDateTime64(o.sinceMs), n: pageSize, ...(o.merchant !== undefined ? { merchant: o.merchant } : {}), ...(after ? { rt: after.rt, id: after.id } : {}) },
      format: 'JSONEachRow',
    });
    const rows = (await rs.json()) as Parameters<typeof fromTransactionRow>[0][];
    if (rows.length === 0) return;
    const last = rows[rows.length - 1]!;
    after = { rt: String(last.received_time), id: last.event_id };
    const batch: Transaction[] = [];
    for (const r of rows) {
      if (r.event_id === lastId) continue;
      lastId = r.event_id;
      batch.push(fromTransactionRow(r));
    }
    yield batch;
    if (rows.length < pageSize) return;
  }
}

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** --since: a duration back from now (90m, 24h, 7d, 2w) or an ISO date/time. */
export function parseSince(value: string, nowMs: number): number {
  const m = /^(\d+)\s*([smhdw])$/.exec(value.trim());
  if (m) return nowMs - Number(m[1]) * UNIT_MS[m[2]!]!;
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new Error(`--since: expected a duration such as 7d, 24h, 90m, or an ISO date, got ${JSON.stringify(value)}`);
  return t;
}
