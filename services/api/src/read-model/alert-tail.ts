// Reads the alerts ClickHouse stored since the last poll, by ingested_at (the platform's insert
// time, not detected_at, so a late alert is seen too). Shared by the polling alert feed (SSE) and
// the read model.
// - An insert that started earlier can become visible after a later one: each poll looks back
//   `overlapMs` and skips ids it already returned.
// - More rows than one batch (a burst, a replay) are read in keyset pages on (ingested_at, alert_id)
//   until caught up, so a batch full of rows inside the overlap window cannot stall the tail.
// - A bounded set of recently returned ids also hides a replayed copy inserted later (a new
//   ingested_at for the same alert).
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
  /** Ids remembered to hide replayed copies. Default 100,000. */
  rememberIds?: number;
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
  const { ch, overlapMs = 5000, batchSize = 5000, maxPages = 20, rememberIds = 100_000 } = options;
  const ALERTS = ch.table('alerts');
  let floor: number | undefined;
  let watermark = 0;
  /** alert_id -> ingested ms, for ids inside the overlap window. */
  const recent = new Map<string, number>();
  /** Insertion-ordered, bounded: ids returned lately. */
  const returned = new Set<string>();

  async function start(): Promise<number> {
    const rs = await ch.client.query({ query: 'SELECT toUnixTimestamp64Milli(now64(3)) AS now', format: 'JSONEachRow' });
    floor = Number((await rs.json<{ now: number | string }>())[0]?.now ?? Date.now());
    watermark = floor;
    return floor;
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
      const since = Math.max(floor, watermark - overlapMs);
      const out: Alert[] = [];
      let after: { t: number; id: string } | undefined;
      let top = watermark;
      for (let i = 0; i < maxPages; i++) {
        const rows = await page(since, after);
        for (const r of rows) {
          if (r.ingested_ms > top) top = r.ingested_ms;
          if (recent.has(r.alert_id) || returned.has(r.alert_id)) continue;
          recent.set(r.alert_id, r.ingested_ms);
          returned.add(r.alert_id);
          if (returned.size > rememberIds) returned.delete(returned.values().next().value as string);
          const { ingested_ms: _ingested, ...row } = r;
          out.push(fromAlertRow(row));
        }
        const last = rows[rows.length - 1];
        if (rows.length < batchSize || !last) break;
        after = { t: last.ingested_ms, id: last.alert_id };
      }
      watermark = top;
      for (const [id, at] of recent) if (at < watermark - overlapMs) recent.delete(id);
      return out;
    },
    reset() {
      floor = undefined;
      recent.clear();
    },
  };
}
