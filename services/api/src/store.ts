// Every ClickHouse query of the API. Reads dedupe ReplacingMergeTree copies (FINAL for small keyed
// reads, or dropping adjacent copies of the same sort key in alert lists), times are bound as epoch-ms Int64 parameters through
// fromUnixTimestamp64Milli (same meaning on chDB and a server, see packages/clickhouse README).
import {
  ContractColumns,
  fromActionRow,
  fromAlertRow,
  fromDateTime64,
  fromTransactionRow,
  mapClickHouseError,
  toAlertTriageRow,
  type ActionRow,
  type AlertRow,
  type ClickHouse,
  type TransactionRow,
  type TriageStatus,
} from '@tillwatch/clickhouse';
import type { Action, Alert, Severity, Transaction } from '@tillwatch/schemas';
import { TIME_TABLE, toAlertView, type AlertView } from './alert-view.js';
import type { Cursor } from './cursor.js';
import { createSelect, timeTableDetector } from './query.js';
import { AUTO_ACTOR, AUTO_RESOLVED, mergeHistory, statusCondition, type AlertStatus, type HistoryEntry } from './lifecycle.js';
import type { ApiMetrics } from './metrics.js';
import type { AlertReadModel } from './read-model/read-model.js';

/**
 * merchant_id (and terminal_id) of fleet-wide alerts, as the second stage raises them
 * (`FLEET` in packages/stage/src/core.ts; the API does not depend on the stage package).
 */
export const FLEET_ID = '*';

export { TIME_TABLE, type AlertView } from './alert-view.js';

export interface AlertFilter {
  rules?: string[];
  severities?: Severity[];
  /** Current status(es), auto_resolved included (lifecycle.ts). */
  statuses?: AlertStatus[];
  terminals?: string[];
  merchants?: string[];
  /** detected_at >= fromMs */
  fromMs?: number;
  /** detected_at < toMs */
  toMs?: number;
}

export interface AlertPage {
  items: AlertView[];
  next: Cursor | null;
}

export interface TriageEntry {
  status: TriageStatus;
  actor: string;
  note: string;
  /** epoch ms */
  at: number;
}

export interface TerminalView {
  terminal_id: string;
  merchant_id: string;
  /** Latest received_time of any of its transactions (epoch ms), null if none stored. */
  last_seen: number | null;
  /** event_time of that latest-received transaction. */
  last_event_time: number | null;
  /** Highest terminal_seq stored. */
  last_seq: number | null;
  /** Transactions stored for the terminal (distinct event_id). */
  transactions: number;
  sync_lag: {
    /** received_time - event_time of the latest-received transaction (ms). */
    last_ms: number | null;
    /** Over the hour of arrivals ending at last_seen, from the terminal_sync_lag_minute rollup. */
    window_minutes: number;
    p50_ms: number | null;
    p90_ms: number | null;
    p99_ms: number | null;
    max_ms: number | null;
    events: number;
  };
  recent_transactions: Transaction[];
  open_gaps: { alert_id: string; missing_from: number | null; missing_to: number | null; detected_at: number; summary: string }[];
  open_alerts: AlertView[];
}

/** How list queries read alerts: depends on whether the read-path migrations (006, 015) are applied. */
export interface ReadPaths {
  /** `alerts_by_detected_v2` (ORDER BY detected_at, alert_id) exists: global time-ordered pages read in order. */
  timeTable: boolean;
}

export interface AlertStore {
  readPaths(): Promise<ReadPaths>;
  listAlerts(filter: AlertFilter, page: { limit: number; cursor?: Cursor | undefined }): Promise<AlertPage>;
  getAlert(id: string): Promise<AlertView | undefined>;
  evidence(alert: Pick<Alert, 'merchant_id' | 'event_ids'>): Promise<Transaction[]>;
  actions(alert: Pick<Alert, 'merchant_id' | 'alert_id'>): Promise<Action[]>;
  /** The action governor's decisions about the actions proposed for this alert (action_decisions, 012). */
  decisions?(alert: Pick<Alert, 'alert_id'>): Promise<ActionDecisionView[]>;
  /** The fleet incident this alert belongs to, and the member alerts of this alert when it is an incident (incident_members, 014). */
  incident?(alert: Pick<Alert, 'alert_id'>): Promise<IncidentLinks>;
  recordTriage(entry: TriageEntry & { alert_id: string }): Promise<void>;
  /** Triage entries and alert updates, oldest first (lifecycle.ts). */
  history(alertId: string): Promise<HistoryEntry[]>;
  terminal(terminalId: string, options: { recent: number }): Promise<TerminalView | undefined>;
  ping(): Promise<void>;
}

/** What became of an action proposed for an alert: issued, suppressed (fleet incident) or downgraded (freeze cap). */
export interface ActionDecisionView {
  action_id: string;
  kind: string;
  decision: 'issued' | 'suppressed' | 'downgraded';
  reason: string;
  final_action_id: string | null;
  final_kind: string | null;
  incident_id: string | null;
  decided_at: number;
}

/** A per-terminal alert linked to a fleet incident (schemas/avro/incident-membership.avsc). */
export interface IncidentMemberView {
  alert_id: string;
  rule: string;
  terminal_id: string;
  merchant_id: string;
  role: 'opening' | 'joined' | 'during' | 'before';
  alert_detected_at: number;
  joined_at: number;
}

export interface IncidentLinks {
  /** The sync_incident alert this alert belongs to; null when none (yet). */
  incident_id: string | null;
  /** When this alert is a sync_incident: its member alerts, in order of linking (the first INCIDENT_MEMBERS_SHOWN). */
  members: IncidentMemberView[];
  /** How many member alerts it has in all (members is cut at INCIDENT_MEMBERS_SHOWN). */
  members_total: number;
}

/** Member alerts listed on an incident's GET /alerts/:id (a fleet outage can link tens of thousands). */
export const INCIDENT_MEMBERS_SHOWN = 500;

type AlertRead = Omit<AlertRow, 'details'> & { details: Record<string, number | null> };
type StatusRead = { alert_id: string; status: AlertStatus; actor: string; at_ms: number };

export function createAlertStore(deps: {
  ch: ClickHouse;
  metrics: ApiMetrics;
  /** 'auto' (default): use alerts_by_detected_v2 when it exists. 'alerts': always read `alerts` (the standard schema's path). */
  readPath?: 'auto' | 'alerts';
  /** In-memory read model: answers list and lookup reads it holds completely; the rest read ClickHouse. */
  readModel?: AlertReadModel;
}): AlertStore {
  const { ch, metrics, readPath = 'auto', readModel } = deps;
  const ALERTS = ch.table('alerts');
  const TIME = ch.table(TIME_TABLE);
  const TRIAGE = ch.table('alert_triage');
  const TXNS = ch.table('transactions');
  const ACTIONS = ch.table('actions');
  const DECISIONS = ch.table('action_decisions');
  const MEMBERS = ch.table('incident_members');
  const LAG = ch.table('terminal_sync_lag_minute');
  const UPDATES = ch.table('alert_updates');
  const RESOLVED = `SELECT alert_id FROM ${UPDATES} WHERE status = '${AUTO_RESOLVED}'`;

  const select = createSelect(ch, metrics);

  const hasTimeTable = timeTableDetector(ch, select);
  const readPaths = async (): Promise<ReadPaths> => ({ timeTable: readPath !== 'alerts' && (await hasTimeTable()) });

  async function statuses(ids: string[]): Promise<Map<string, StatusRead>> {
    if (ids.length === 0) return new Map();
    const rows = await select<StatusRead>(
      'triage_status',
      `SELECT alert_id, argMax(tr.status, (tr.at, tr.status)) AS status, argMax(tr.actor, (tr.at, tr.status)) AS actor, toUnixTimestamp64Milli(max(tr.at)) AS at_ms
       FROM ${TRIAGE} AS tr WHERE alert_id IN {ids:Array(String)} GROUP BY alert_id`,
      { ids },
    );
    const st = new Map(rows.map((r) => [r.alert_id, r]));
    // An update that resolved the alert wins over triage (lifecycle.ts).
    const resolved = await select<{ alert_id: string; at_ms: number | string }>(
      'update_status',
      `SELECT alert_id, toUnixTimestamp64Milli(min(resolved_at)) AS at_ms FROM ${UPDATES} WHERE alert_id IN {ids:Array(String)} AND status = '${AUTO_RESOLVED}' GROUP BY alert_id`,
      { ids },
    );
    for (const r of resolved) st.set(r.alert_id, { alert_id: r.alert_id, status: AUTO_RESOLVED, actor: AUTO_ACTOR, at_ms: Number(r.at_ms) });
    return st;
  }

  async function withStatus(rows: AlertRead[]): Promise<AlertView[]> {
    const st = await statuses(rows.map((r) => r.alert_id));
    return rows.map((r) => {
      const s = st.get(r.alert_id);
      return toAlertView(fromAlertRow(r), s ? { status: s.status, actor: s.actor, at: s.at_ms } : undefined);
    });
  }

  return {
    readPaths,

    async listAlerts(filter, { limit, cursor }) {
      if (readModel) {
        const page = await readModel.list(filter, { limit, cursor });
        if (page) return page;
      }
      const { timeTable } = await readPaths();
      const cond: string[] = [];
      const params: Record<string, unknown> = {};
      const pkFiltered = (filter.merchants?.length ?? 0) > 0 || (filter.terminals?.length ?? 0) > 0;
      // Read path. Merchant/terminal filters: the alerts primary key (merchant_id, terminal_id, ...)
      // narrows the read to those granules. Otherwise, with the 006 time-ordered table, ClickHouse
      // reads (detected_at, alert_id) in reverse order and stops after the page; without it, the
      // whole alerts table is sorted (slow at scale, see README).
      const useTime = timeTable && !pkFiltered;
      const table = useTime ? TIME : ALERTS;
      if (filter.rules?.length) {
        cond.push('rule IN {rules:Array(String)}');
        params['rules'] = filter.rules;
      }
      if (filter.severities?.length) {
        cond.push('severity IN {severities:Array(String)}');
        params['severities'] = filter.severities;
      }
      if (filter.merchants?.length) {
        cond.push('merchant_id IN {merchants:Array(String)}');
        params['merchants'] = filter.merchants;
      }
      if (filter.terminals?.length) {
        cond.push('terminal_id IN {terminals:Array(String)}');
        params['terminals'] = filter.terminals;
        // terminal_id is the 2nd key column: give the index the merchant(s) too (a terminal belongs
        // to one merchant), found with a cheap scan of the LowCardinality terminal_id column.
        if (!filter.merchants?.length) cond.push(`merchant_id IN (SELECT DISTINCT merchant_id FROM ${ALERTS} WHERE terminal_id IN {terminals:Array(String)})`);
      }
      if (filter.fromMs !== undefined) {
        cond.push('detected_at >= fromUnixTimestamp64Milli({from:Int64})');
        params['from'] = filter.fromMs;
      }
      if (filter.toMs !== undefined) {
        cond.push('detected_at < fromUnixTimestamp64Milli({to:Int64})');
        params['to'] = filter.toMs;
      }
      if (cursor) {
        // (detected_at, alert_id) < (t, id), written so that the detected_at bound alone can prune.
        cond.push('detected_at <= fromUnixTimestamp64Milli({ct:Int64}) AND (detected_at < fromUnixTimestamp64Milli({ct:Int64}) OR alert_id < {cid:String})');
        params['ct'] = cursor.t;
        params['cid'] = cursor.id;
      }
      if (filter.statuses?.length) {
        // Current status = auto_resolved when an update resolved it, else the latest triage row;
        // alerts without either are open (lifecycle.ts).
        const current = `SELECT alert_id FROM ${TRIAGE} GROUP BY alert_id HAVING argMax(status, (at, status))`;
        const c = statusCondition(filter.statuses, current, RESOLVED);
        Object.assign(params, c.params);
        cond.push(c.sql);
      }
      // Deduplication without FINAL: copies of an alert (replays into a ReplacingMergeTree not merged
      // yet) share (detected_at, alert_id), the sort key of the page, so they come out adjacent and
      // are dropped below (over-fetching a little to still fill the page). FINAL would merge the
      // whole key range before the LIMIT applies (measured: 1.5-2x slower on 1M alerts).
      const fetch = limit + 1 + Math.max(2, Math.ceil(limit / 10));
      params['fetch'] = fetch;
      const where = cond.length ? cond.join(' AND ') : '1';
      // Unfiltered first pages: ClickHouse then reads every column of the newest granules of each
      // part; bounding detected_at first (a scalar subquery reading only detected_at) halves that.
      // With a filter the plain form is faster (measured), so it is used only here.
      const bound = cond.length === 0 ? ` AND detected_at >= (SELECT min(d) FROM (SELECT detected_at AS d FROM ${table} ORDER BY detected_at DESC LIMIT {fetch:UInt32}))` : '';
      const rows = await select<AlertRead>(
        useTime ? 'list_alerts_time' : 'list_alerts',
        `SELECT ${ContractColumns.alerts} FROM ${table} WHERE ${where}${bound} ORDER BY detected_at DESC, alert_id DESC LIMIT {fetch:UInt32}`,
        params,
      );
      const seen = new Set<string>();
      const unique: AlertRead[] = [];
      for (const r of rows) {
        if (seen.has(r.alert_id)) continue;
        seen.add(r.alert_id);
        unique.push(r);
      }
      const more = unique.length > limit || rows.length === fetch;
      const pageRows = unique.slice(0, limit);
      const items = await withStatus(pageRows);
      const last = items[items.length - 1];
      return { items, next: more && last ? { t: last.detected_at, id: last.alert_id } : null };
    },

    async getAlert(id) {
      if (readModel) {
        const view = await readModel.get(id);
        if (view) return view;
      }
      // alert_id is not a key column of `alerts`; with 006's bloom filter index this reads one
      // granule, without it the alert_id column is scanned (LIMIT 1 stops at the first copy).
      const rows = await select<AlertRead>('get_alert', `SELECT ${ContractColumns.alerts} FROM ${ALERTS} WHERE alert_id = {id:String} LIMIT 1`, { id });
      if (rows.length === 0) return undefined;
      return (await withStatus(rows))[0];
    },

    async evidence(alert) {
      if (alert.event_ids.length === 0) return [];
      if (alert.merchant_id === FLEET_ID) {
        // A fleet alert (sync_incident, freeze_circuit_open: merchant_id = terminal_id = '*') names
        // transactions of several merchants, so the merchant key cannot narrow the read. Its list is
        // short (the stage keeps the first event of at most 10 terminals), so the ids are looked up
        // across the table: without FINAL, which would have to merge every key range first, and with
        // LIMIT 1 BY event_id in its place (replayed copies of a transaction are the same contract).
        const rows = await select<TransactionRow>(
          'evidence_fleet',
          `SELECT ${ContractColumns.transactions} FROM ${TXNS} WHERE event_id IN {ids:Array(String)} ORDER BY event_time, event_id LIMIT 1 BY event_id`,
          { ids: alert.event_ids },
        );
        return rows.map(fromTransactionRow);
      }
      // Evidence of any other alert is at the alert's merchant (duplicate_charge spans terminals of one merchant).
      const rows = await select<TransactionRow>(
        'evidence',
        `SELECT ${ContractColumns.transactions} FROM ${TXNS} FINAL WHERE merchant_id = {m:String} AND event_id IN {ids:Array(String)} ORDER BY event_time, event_id`,
        { m: alert.merchant_id, ids: alert.event_ids },
      );
      return rows.map(fromTransactionRow);
    },

    async actions(alert) {
      const rows = await select<ActionRow>(
        'alert_actions',
        `SELECT ${ContractColumns.actions} FROM ${ACTIONS} FINAL WHERE merchant_id = {m:String} AND alert_id = {id:String} ORDER BY issued_at, action_id`,
        { m: alert.merchant_id, id: alert.alert_id },
      );
      return rows.map(fromActionRow);
    },

    async decisions(alert) {
      const rows = await select<{ action_id: string; kind: string; decision: ActionDecisionView['decision']; reason: string; final_action_id: string | null; final_kind: string | null; incident_id: string | null; decided_at: string }>(
        'alert_decisions',
        `SELECT action_id, kind, decision, reason, final_action_id, final_kind, incident_id, decided_at FROM ${DECISIONS} FINAL WHERE alert_id = {id:String} ORDER BY decided_at, action_id`,
        { id: alert.alert_id },
      );
      return rows.map((r) => ({ ...r, decided_at: fromDateTime64(r.decided_at) }));
    },

    async incident(alert) {
      type MemberRead = { incident_id: string; alert_id: string; rule: string; terminal_id: string; merchant_id: string; role: IncidentMemberView['role']; alert_detected_at: string; joined_at: string };
      const own = await select<{ incident_id: string }>('alert_incident', `SELECT incident_id FROM ${MEMBERS} FINAL WHERE alert_id = {id:String} LIMIT 1`, { id: alert.alert_id });
      const rows = await select<MemberRead & { total: string | number }>(
        'incident_members',
        `SELECT incident_id, alert_id, rule, terminal_id, merchant_id, role, alert_detected_at, joined_at, count() OVER () AS total
         FROM ${MEMBERS} FINAL WHERE incident_id = {id:String} ORDER BY joined_at, alert_detected_at, alert_id LIMIT {n:UInt32}`,
        { id: alert.alert_id, n: INCIDENT_MEMBERS_SHOWN },
      );
      const members = rows.map(({ incident_id: _i, total: _t, ...r }) => ({ ...r, alert_detected_at: fromDateTime64(r.alert_detected_at), joined_at: fromDateTime64(r.joined_at) }));
      return { incident_id: own[0]?.incident_id ?? null, members, members_total: rows.length === 0 ? 0 : Number(rows[0]!.total) };
    },

    async recordTriage(entry) {
      const end = metrics.queries.startTimer({ query: 'triage_insert' });
      try {
        await ch.client.insert({ table: TRIAGE, values: [toAlertTriageRow(entry)], format: 'JSONEachRow' });
        readModel?.noteTriage(entry.alert_id, { status: entry.status, actor: entry.actor, at: entry.at });
      } catch (e) {
        metrics.queryErrors.inc({ query: 'triage_insert', kind: 'insert' });
        throw mapClickHouseError(e);
      } finally {
        end();
      }
    },

    async history(alertId) {
      const rows = await select<Omit<TriageEntry, 'at'> & { at_ms: number }>(
        'triage_history',
        `SELECT status, actor, note, toUnixTimestamp64Milli(at) AS at_ms FROM ${TRIAGE} WHERE alert_id = {id:String} ORDER BY at, status`,
        { id: alertId },
      );
      const updates = await select<{ update_id: string; status: AlertStatus; resolution: string; resolved_by_event_ids: string[]; summary: string; at_ms: number | string }>(
        'update_history',
        `SELECT update_id, status, resolution, resolved_by_event_ids, summary, toUnixTimestamp64Milli(resolved_at) AS at_ms FROM ${UPDATES} FINAL WHERE alert_id = {id:String}`,
        { id: alertId },
      );
      return mergeHistory(
        rows.map(({ at_ms, ...r }) => ({ ...r, at: Number(at_ms) })),
        updates.map((u) => ({ status: u.status, actor: AUTO_ACTOR, note: u.summary, at: Number(u.at_ms), update_id: u.update_id, resolution: u.resolution, resolved_by_event_ids: u.resolved_by_event_ids })),
      );
    },

    async terminal(terminalId, { recent }) {
      // A terminal belongs to one merchant: find it once, then every read uses the key prefix.
      const owner = await select<{ merchant_id: string }>(
        'terminal_owner',
        `SELECT merchant_id FROM (SELECT merchant_id FROM ${TXNS} WHERE terminal_id = {t:String} LIMIT 1 UNION ALL SELECT merchant_id FROM ${ALERTS} WHERE terminal_id = {t:String} LIMIT 1) LIMIT 1`,
        { t: terminalId },
      );
      const merchant = owner[0]?.merchant_id;
      if (merchant === undefined) return undefined;
      const key = { m: merchant, t: terminalId };
      const [stats] = await select<{ n: number; last_seen: number | null; last_event_time: number | null; last_seq: number | null }>(
        'terminal_stats',
        `SELECT uniqExact(event_id) AS n,
                if(n = 0, NULL, toUnixTimestamp64Milli(max(received_time))) AS last_seen,
                if(n = 0, NULL, toUnixTimestamp64Milli(argMax(event_time, received_time))) AS last_event_time,
                if(n = 0, NULL, max(terminal_seq)) AS last_seq
         FROM ${TXNS} WHERE merchant_id = {m:String} AND terminal_id = {t:String}`,
        key,
      );
      const recentRows = await select<TransactionRow>(
        'terminal_recent',
        `SELECT ${ContractColumns.transactions} FROM ${TXNS} FINAL WHERE merchant_id = {m:String} AND terminal_id = {t:String} ORDER BY received_time DESC, event_id DESC LIMIT {n:UInt32}`,
        { ...key, n: recent },
      );
      const windowMinutes = 60;
      let lag: { q: (number | null)[]; mx: number | null; events: number } | undefined;
      if (stats?.last_seen != null) {
        [lag] = await select<{ q: (number | null)[]; mx: number | null; events: number }>(
          'terminal_lag',
          `SELECT quantilesMerge(0.5, 0.9, 0.99)(lag_ms) AS q, max(max_lag_ms) AS mx, uniqExactMerge(events) AS events
           FROM ${LAG} WHERE merchant_id = {m:String} AND terminal_id = {t:String}
             AND minute > toStartOfMinute(fromUnixTimestamp64Milli({last:Int64})) - INTERVAL {w:UInt32} MINUTE`,
          { ...key, last: stats.last_seen, w: windowMinutes },
        );
      }
      const open = await this.listAlerts({ merchants: [merchant], terminals: [terminalId], statuses: ['open'] }, { limit: 50 });
      // Gaps whose numbers are still missing: acknowledged ones too (an analyst is on it, the gap is
      // not filled), as the Grafana panels count them. Resolved, false-positive and auto-resolved
      // (filled) gaps are not.
      const gaps = await this.listAlerts({ merchants: [merchant], terminals: [terminalId], statuses: ['open', 'acknowledged'], rules: ['sequence_gap'] }, { limit: 100 });
      const recentTx = recentRows.map(fromTransactionRow);
      const latest = recentTx[0];
      const num = (v: number | null | undefined) => (typeof v === 'number' && Number.isFinite(v) ? Math.round(v) : null);
      const hasLag = (lag?.events ?? 0) > 0;
      return {
        terminal_id: terminalId,
        merchant_id: merchant,
        last_seen: stats?.last_seen ?? null,
        last_event_time: stats?.last_event_time ?? null,
        last_seq: stats?.last_seq ?? null,
        transactions: stats?.n ?? 0,
        sync_lag: {
          last_ms: latest ? latest.received_time - latest.event_time : null,
          window_minutes: windowMinutes,
          p50_ms: hasLag ? num(lag?.q[0]) : null,
          p90_ms: hasLag ? num(lag?.q[1]) : null,
          p99_ms: hasLag ? num(lag?.q[2]) : null,
          max_ms: hasLag ? num(lag?.mx) : null,
          events: lag?.events ?? 0,
        },
        recent_transactions: recentTx,
        open_gaps: gaps.items.map((a) => ({
          alert_id: a.alert_id,
          missing_from: a.details['missing_from'] ?? null,
          missing_to: a.details['missing_to'] ?? null,
          detected_at: a.detected_at,
          summary: a.summary,
        })),
        open_alerts: open.items,
      };
    },

    async ping() {
      await ch.ping();
    },
  };
}
