// The read model's ClickHouse queries: the initial load (newest alerts, in keyset pages), the
// triage state, new triage rows, and alert rows by key for pages whose rows left the arena.
import { ContractColumns, fromAlertRow, type AlertRow, type ClickHouse } from '@tillwatch/clickhouse';
import type { Alert } from '@tillwatch/schemas';
import { TIME_TABLE } from '../alert-view.js';
import type { ApiMetrics } from '../metrics.js';
import { createSelect, timeTableDetector } from '../query.js';
import { AUTO_ACTOR, AUTO_RESOLVED, type AlertStatus } from '../lifecycle.js';

export interface AlertKey {
  /** detected_at, epoch ms */
  t: number;
  id: string;
}

/** A triage row, or an auto-resolution read from alert_updates (status auto_resolved, at = resolved_at). */
export interface TriageRead {
  alert_id: string;
  status: AlertStatus;
  actor: string;
  at: number;
  /** ingested_at (ClickHouse clock), epoch ms */
  ingested: number;
}

export interface ReadModelSource {
  /** Whether the time-ordered alerts_by_detected_v2 (015) exists (pages then read in order). */
  timeTable(): Promise<boolean>;
  /** Key of the k-th newest alert (0 = newest), or undefined when there are not more than k. */
  keyAt(k: number): Promise<AlertKey | undefined>;
  /** Up to n alerts in ascending (detected_at, alert_id) order from `from` (inclusive) or after `after`. */
  page(bound: { from: AlertKey } | { after: AlertKey } | undefined, n: number): Promise<Alert[]>;
  /** Latest triage of every triaged alert, and every auto-resolution (the index gives those precedence). */
  triageState(): Promise<TriageRead[]>;
  /** Triage rows and auto-resolutions stored since `sinceMs` (ingested_at: both tables' DEFAULT now64, one clock). */
  triageSince(sinceMs: number): Promise<TriageRead[]>;
  /** The rows of these alerts (copies collapsed), any order. */
  rows(keys: (AlertKey & { merchant: string })[]): Promise<Alert[]>;
}

type AlertRead = Omit<AlertRow, 'details'> & { details: Record<string, number | null> };

export function createReadModelSource(ch: ClickHouse, metrics: ApiMetrics): ReadModelSource {
  const ALERTS = ch.table('alerts');
  const TIME = ch.table(TIME_TABLE);
  const TRIAGE = ch.table('alert_triage');
  const UPDATES = ch.table('alert_updates');
  // Auto-resolutions in the triage rows' shape (lifecycle.ts): the read model treats them as a status
  // that outranks triage, so its filters, pages and views need nothing else.
  const resolutions = (where: string) =>
    `SELECT alert_id, '${AUTO_RESOLVED}' AS status, '${AUTO_ACTOR}' AS actor, toUnixTimestamp64Milli(min(resolved_at)) AS at_ms, toUnixTimestamp64Milli(max(ingested_at)) AS ing_ms
     FROM ${UPDATES} WHERE status = '${AUTO_RESOLVED}'${where} GROUP BY alert_id`;

  const select = createSelect(ch, metrics);

  const timeTable = timeTableDetector(ch, select);
  /** Time-ordered table when there is one (reads in order), else `alerts` (sorts: slow at scale, still correct). */
  const ordered = async () => ((await timeTable()) ? TIME : ALERTS);
  const triageRead = (r: { alert_id: string; status: AlertStatus; actor: string; at_ms: number | string; ing_ms: number | string }): TriageRead => ({
    alert_id: r.alert_id,
    status: r.status,
    actor: r.actor,
    at: Number(r.at_ms),
    ingested: Number(r.ing_ms),
  });

  return {
    timeTable,
    async keyAt(k) {
      const rows = await select<{ t: number | string; id: string }>(
        'read_model_cut',
        `SELECT toUnixTimestamp64Milli(detected_at) AS t, alert_id AS id FROM ${await ordered()} ORDER BY detected_at DESC, alert_id DESC LIMIT 1 OFFSET {k:UInt64}`,
        { k },
      );
      const r = rows[0];
      return r ? { t: Number(r.t), id: r.id } : undefined;
    },
    async page(bound, n) {
      const params: Record<string, unknown> = { n };
      let where = '';
      if (bound) {
        const key = 'from' in bound ? bound.from : bound.after;
        params['t'] = key.t;
        params['id'] = key.id;
        // Written so the detected_at bound alone prunes by the primary key.
        where = `WHERE detected_at >= fromUnixTimestamp64Milli({t:Int64}) AND (detected_at > fromUnixTimestamp64Milli({t:Int64}) OR alert_id ${'from' in bound ? '>=' : '>'} {id:String})`;
      }
      const rows = await select<AlertRead>('read_model_load', `SELECT ${ContractColumns.alerts} FROM ${await ordered()} ${where} ORDER BY detected_at, alert_id LIMIT {n:UInt32}`, params);
      return rows.map(fromAlertRow);
    },
    async triageState() {
      const rows = await select<Parameters<typeof triageRead>[0]>(
        'read_model_triage_state',
        `SELECT alert_id, argMax(tr.status, (tr.at, tr.status)) AS status, argMax(tr.actor, (tr.at, tr.status)) AS actor, toUnixTimestamp64Milli(max(tr.at)) AS at_ms, toUnixTimestamp64Milli(max(tr.ingested_at)) AS ing_ms
         FROM ${TRIAGE} AS tr GROUP BY alert_id`,
      );
      const resolved = await select<Parameters<typeof triageRead>[0]>('read_model_update_state', resolutions(''));
      return [...rows, ...resolved].map(triageRead);
    },
    async triageSince(sinceMs) {
      const rows = await select<Parameters<typeof triageRead>[0]>(
        'read_model_triage_tail',
        `SELECT alert_id, status, actor, toUnixTimestamp64Milli(at) AS at_ms, toUnixTimestamp64Milli(ingested_at) AS ing_ms
         FROM ${TRIAGE} WHERE ingested_at >= fromUnixTimestamp64Milli({since:Int64})`,
        { since: sinceMs },
      );
      const resolved = await select<Parameters<typeof triageRead>[0]>('read_model_update_tail', resolutions(' AND ingested_at >= fromUnixTimestamp64Milli({since:Int64})'), { since: sinceMs });
      return [...rows, ...resolved].map(triageRead);
    },
    async rows(keys) {
      if (keys.length === 0) return [];
      const tbl = await ordered();
      const ids = keys.map((k) => k.id);
      let sql: string;
      const params: Record<string, unknown> = { ids };
      if (tbl === TIME) {
        params['a'] = Math.min(...keys.map((k) => k.t));
        params['b'] = Math.max(...keys.map((k) => k.t));
        sql = `SELECT ${ContractColumns.alerts} FROM ${TIME} WHERE detected_at BETWEEN fromUnixTimestamp64Milli({a:Int64}) AND fromUnixTimestamp64Milli({b:Int64}) AND alert_id IN {ids:Array(String)}`;
      } else {
        params['m'] = [...new Set(keys.map((k) => k.merchant))];
        sql = `SELECT ${ContractColumns.alerts} FROM ${ALERTS} WHERE merchant_id IN {m:Array(String)} AND alert_id IN {ids:Array(String)}`;
      }
      return (await select<AlertRead>('read_model_rows', sql, params)).map(fromAlertRow);
    },
  };
}
