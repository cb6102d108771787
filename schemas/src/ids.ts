// Deterministic ids of the records that are not alerts (alert and action ids live with the rule
// engine, packages/rules/src/ids.ts; the same construction: SHA-256 of a JSON array, 128 bits hex).
import { createHash } from 'node:crypto';
import type { AlertResolution, AlertUpdateStatus } from './generated.js';

const hex128 = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 32);

/**
 * update_id of an alert update: the alert, the new status, the resolution and the (sorted) events
 * that resolved it. The same resolution of the same alert by the same events always gives the same
 * id, in live and backtest, so a replay is deduplicated downstream (ClickHouse alert_updates).
 */
export function alertUpdateId(alertId: string, status: AlertUpdateStatus, resolution: AlertResolution, resolvedByEventIds: readonly string[]): string {
  return hex128(JSON.stringify(['alert_update', alertId, status, resolution, [...resolvedByEventIds].sort()]));
}

/**
 * membership_id of an incident membership (schemas/avro/incident-membership.avsc): the incident and
 * the member alert. An alert joins at most one incident, so a replay or a restarted stage writes the
 * same id again (ClickHouse incident_members keeps one row).
 */
export function incidentMembershipId(incidentId: string, alertId: string): string {
  return hex128(JSON.stringify(['incident_member', incidentId, alertId]));
}
