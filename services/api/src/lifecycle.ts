// Alert lifecycle: the analyst's triage states plus `auto_resolved`, set by an alert update from
// the detector (pos.alerts.updates.v1 -> ClickHouse alert_updates, migration 009). Pure helpers
// shared by the ClickHouse path (store.ts) and the read model (read-model/).
//
// Precedence: an alert that an update resolved is `auto_resolved`, whatever its triage says (the
// events settled it: the card was refunded, the gap filled, the episode ended); triage entries stay
// in its history. Otherwise its status is the latest triage state, `open` when never triaged.
import { TriageStatusValues, type TriageStatus } from '@tillwatch/clickhouse';

export const AUTO_RESOLVED = 'auto_resolved' as const;
export type AlertStatus = TriageStatus | typeof AUTO_RESOLVED;
export const AlertStatusValues = [...TriageStatusValues, AUTO_RESOLVED] as const;

/** Who an auto-resolution is attributed to in status_by and the history (not an API key). */
export const AUTO_ACTOR = 'detector';

/** One entry of an alert's history: a triage row, or an alert update (with its resolution). */
export interface HistoryEntry {
  status: AlertStatus;
  /** API key name, or AUTO_ACTOR for an update. */
  actor: string;
  /** The analyst's note, or the update's summary. */
  note: string;
  /** epoch ms: triage time, or the update's resolved_at (stream clock). */
  at: number;
  /** 'update' for an alert update; absent for a triage entry (the trail's shape before updates existed). */
  source?: 'update';
  /** Updates only. */
  update_id?: string;
  resolution?: string;
  resolved_by_event_ids?: string[];
}

/** Triage and update entries in one time-ordered list (ties: triage first, then by status, then update id). */
export function mergeHistory(triage: readonly Omit<HistoryEntry, 'source'>[], updates: readonly Omit<HistoryEntry, 'source'>[]): HistoryEntry[] {
  const all: HistoryEntry[] = [...triage, ...updates.map((e) => ({ ...e, source: 'update' as const }))];
  const rank = (e: HistoryEntry) => (e.source === 'update' ? 1 : 0);
  return all.sort((a, b) => a.at - b.at || rank(a) - rank(b) || (a.status < b.status ? -1 : a.status > b.status ? 1 : 0) || ((a.update_id ?? '') < (b.update_id ?? '') ? -1 : 1));
}

/** Current status from the latest triage and whether an update resolved the alert. */
export function currentStatus(triage: TriageStatus | undefined, autoResolved: boolean): AlertStatus {
  return autoResolved ? AUTO_RESOLVED : (triage ?? 'open');
}

/**
 * The SQL condition (on `alert_id`) for a status filter. `resolvedIds` selects the alerts an
 * update resolved; `triageCurrent` is a GROUP BY alert_id ... HAVING argMax(status, ...) prefix
 * that the condition completes with `IN` / `NOT IN {statuses:Array(String)}` (the bound triage
 * statuses, returned in `params`). An alert with no triage row is `open`.
 */
export function statusCondition(statuses: readonly AlertStatus[], triageCurrent: string, resolvedIds: string): { sql: string; params: Record<string, unknown> } {
  const triageStatuses = statuses.filter((s): s is TriageStatus => s !== AUTO_RESOLVED);
  const wantsAuto = statuses.includes(AUTO_RESOLVED);
  let triageOk: string;
  if (triageStatuses.includes('open')) triageOk = `alert_id NOT IN (${triageCurrent} NOT IN {statuses:Array(String)})`;
  else if (triageStatuses.length > 0) triageOk = `alert_id IN (${triageCurrent} IN {statuses:Array(String)})`;
  else triageOk = '0';
  const sql = `((${triageOk}) AND alert_id NOT IN (${resolvedIds}))${wantsAuto ? ` OR alert_id IN (${resolvedIds})` : ''}`;
  return { sql: `(${sql})`, params: { statuses: triageStatuses } };
}
