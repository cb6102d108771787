// Reads the alerts ClickHouse stored since the last poll, by ingested_at (the platform's insert
// time, not detected_at, so a late alert is seen too). Shared by the polling alert feed (SSE) and
// the read model.
// - An insert that started earlier can become visible after a later one: each poll looks back
//   `overlapMs` and skips ids it already returned.
// - More rows than one batch (a burst, a replay) are read in keyset pages on (ingested_at, alert_id)
//   until caught up; a poll that stops at maxPages leaves its keyset position for the next poll, so
//   a burst larger than maxPages x batchSize at one ingested_at (one big replay INSERT) cannot
//   stall the tail either.
// - A poll is all or nothing: the ids it read count as returned only once it succeeds, so a query
//   failing half-way loses nothing (the next poll reads those rows again).
// - A bounded set of recently returned ids also hides a replayed copy inserted later (a new
//   ingested_at for the same alert); rememberIds 0 turns that off (the read model wants every copy).
import { ContractColumns, fromAlertRow, type AlertRow, type ClickHouse } from '@tillwatch/clickhouse';
import type { Alert } from '@tillwatch/schemas';

export interface AlertTailOptions {
  ch: ClickHouse;
  /** Look-back per poll for inserts that became visible late. Default 5 s. */
  overlapMs?: number;
  /** Rows per query. Default 5000. */
  batchSize?: number;
  /** Keyset pages per poll at most (the next poll continues). Default 20. */
  maxPages?: number;
  /** Ids remembered to hide replayed copies. Default 100,000; 0 returns every copy (once per overlap window). */
  rememberIds?: number;
  /**
   * The first poll also reads rows stored up to this long before start(): an insert that began
   * before it but became visible after it (missed by a snapshot taken at start) is not lost.
   * Default 0 (a live feed starts at "now").
   */
  lookBackMs?: number;
}

export interface AlertTail {
  /** Pin the start at ClickHouse's clock: rows ingested before it are history, not returned. Returns that time (epoch ms). */
  start(): Promise<number>;
  /** Alerts stored since the previous poll, each once, in ingestion order. Calls start() first if needed. */
  poll(): Promise<Alert[]>;
  /** Forget the position: the next poll starts from "now" again. */
  reset(): void;
}

type Polled = Omit<AlertRow, 'details'> & { details: Record<string, number | null>; ingested_ms: number };

export function createAlertTail(options: AlertTailOptions): AlertTail {
  const { ch, overlapMs = 5000, batchSize = 5000, maxPages = 20, rememberIds = 100_000, lookBackMs = 0 } = options;
  const ALERTS = ch.table('alerts');
  let floor: number | undefined;
  let watermark = 0;
  /** Copies (alert_id + detected_at) read inside the overlap window -> their ingested ms. */
  const recent = new Map<string, number>();
  /** Insertion-ordered, bounded: ids returned lately. */
  const returned = new Set<string>();
  /** Where a poll that hit maxPages stopped: the next one continues there. */
  let resume: { since: number; after: { t: number; id: string } } | undefined;

  async function start(): Promise<number> {
    const rs = await ch.client.query({ query: 'SELECT toUnixTimestamp64Milli(now64(3)) AS now', format: 'JSONEachRow' });
    const now = Number((await rs.json<{ now: number | string }>())[0]?.now ?? Date.now());
    floor = now - lookBackMs;
    watermark = now;
    resume = undefined;
    return now;
  }

  async function page(since: number, after: { t: number; id: string } | undefined): Promise<Polled[]> {
    const rs = await ch.client.query({
      query: `SELECT ${ContractColumns.alerts}, toUnixTimestamp64Milli(ingested_at) AS ingested_ms FROM ${ALERTS}
              WHERE ingested_at >= fromUnixTimestamp64Milli({since:Int64})
              ${after ? 'AND (ingested_at > fromUnixTimestamp64Milli({at:Int64}) OR (ingested_at = fromUnixTimestamp64Milli({at:Int64}) AND alert_id > {aid:String}))' : ''}
              ORDER BY ingested_at, alert_id LIMIT {n:UInt32}`,
      query_params: { since, n: batchSize, ...(after ? { at: after.t, aid: after.id } : {}) },
      format: 'JSONEachRow',
    });
    return (await rs.json<Polled>()).map((r) => ({ ...r, ingested_ms: Number(r.ingested_ms) }));
  }

  return {
    start,
    async poll() {
      if (floor === undefined) {
        await start();
        return [];
      }
      const since = resume ? resume.since : Math.max(floor, watermark - overlapMs);
      let after = resume?.after;
      const out: Alert[] = [];
      // Taken into recent/returned only when the whole poll succeeded.
      const read = new Map<string, number>();
      const ids = new Set<string>();
      let top = watermark;
      let caughtUp = false;
      for (let i = 0; i < maxPages; i++) {
        const rows = await page(since, after);
        for (const r of rows) {
          if (r.ingested_ms > top) top = r.ingested_ms;
          // The same copy seen again (overlap), or any copy of an alert returned lately (when remembered).
          const copy = `${r.alert_id}\u0000${String(r.detected_at)}`;
          if (recent.has(copy) || read.has(copy) || returned.has(r.alert_id)) continue;
          read.set(copy, r.ingested_ms);
          if (rememberIds > 0) {
            if (ids.has(r.alert_id)) continue;
            ids.add(r.alert_id);
          }
          const { ingested_ms: _ingested, ...row } = r;
          out.push(fromAlertRow(row));
        }
        const last = rows[rows.length - 1];
        if (rows.length < batchSize || !last) {
          caughtUp = true;
          break;
        }
        after = { t: last.ingested_ms, id: last.alert_id };
      }
      resume = caughtUp || !after ? undefined : { since, after };
      watermark = top;
      for (const [copy, at] of read) recent.set(copy, at);
      if (rememberIds > 0) {
        for (const a of out) returned.add(a.alert_id);
        while (returned.size > rememberIds) returned.delete(returned.values().next().value as string);
      }
      for (const [copy, at] of recent) if (at < watermark - overlapMs) recent.delete(copy);
      return out;
    },
    reset() {
      floor = undefined;
      resume = undefined;
      recent.clear();
    },
  };
}
