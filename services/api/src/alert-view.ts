// An alert as the API shows it: the contract, plus its current triage state, with NaN details as
// null (JSON has no NaN). Built the same way by every read path (ClickHouse, read model, SSE).
import type { Alert } from '@tillwatch/schemas';
import type { AlertStatus } from './lifecycle.js';

export interface AlertView extends Omit<Alert, 'details'> {
  /** NaN in ClickHouse becomes null here (JSON has no NaN). */
  details: Record<string, number | null>;
  /** auto_resolved when an alert update resolved it, else the latest triage status; 'open' when nobody triaged it yet. */
  status: AlertStatus;
  /** Who set the current status (API key name), null when open and never triaged. */
  status_by: string | null;
  /** When the current status was set (epoch ms), null when never triaged. */
  status_at: number | null;
}

/** Current triage of an alert, as read from alert_triage (latest row). */
export interface CurrentTriage {
  status: AlertStatus;
  actor: string;
  /** epoch ms */
  at: number;
}

export function jsonDetails(d: Record<string, number | null>): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const [k, v] of Object.entries(d)) out[k] = typeof v === 'number' && Number.isFinite(v) ? v : null;
  return out;
}

export function toAlertView(alert: Alert, triage: CurrentTriage | undefined): AlertView {
  return { ...alert, details: jsonDetails(alert.details), status: triage?.status ?? 'open', status_by: triage?.actor ?? null, status_at: triage?.at ?? null };
}

/** Name of the table added by schemas/clickhouse/006_alert_read_paths.sql. */
export const TIME_TABLE = 'alerts_by_detected';
