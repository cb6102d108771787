// An alert as the API shows it: the contract, plus its current triage state, with NaN details as
// null (JSON has no NaN). Built the same way by every read path (ClickHouse, read model, SSE).
import { formatMoney, type Alert } from '@tillwatch/schemas';
import type { AlertStatus } from './lifecycle.js';

export interface AlertView extends Omit<Alert, 'details' | 'currency' | 'amount_minor'> {
  /** NaN in ClickHouse becomes null here (JSON has no NaN). */
  details: Record<string, number | null>;
  /** ISO 4217 code of the money the alert is about; null: no single amount (or stored before alerts carried it). */
  currency: string | null;
  /** The alert's amount in minor units of currency; null with currency. */
  amount_minor: number | null;
  /** amount_minor as money ("42.50 EUR"), as transactions show it (money-view.ts); null with currency. */
  amount: string | null;
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
  const currency = alert.currency ?? null;
  const amount_minor = currency === null ? null : (alert.amount_minor ?? null);
  return {
    ...alert,
    details: jsonDetails(alert.details),
    currency,
    amount_minor,
    amount: currency !== null && amount_minor !== null ? formatMoney(amount_minor, currency) : null,
    status: triage?.status ?? 'open',
    status_by: triage?.actor ?? null,
    status_at: triage?.at ?? null,
  };
}

/** The time-ordered alerts (schemas/clickhouse/015_alert_read_paths_version_money.sql; 006's alerts_by_detected before it). */
export const TIME_TABLE = 'alerts_by_detected_v2';
