// What each golden scenario must show, checked on the output of both stages (generate.ts refuses to
// write goldens that break it; golden.test.ts checks it again besides the byte-for-byte comparison).
import type { Alert, AlertUpdate, IncidentMembership } from '@tillwatch/schemas';
import type { GovernedAction } from '../../src/types.js';
import { lines, type ScenarioOutput } from './run.js';

type Check = (o: ScenarioOutput) => string[];

const FREEZE = new Set(['FREEZE_TERMINAL', 'FREEZE_CARD']);

/** An alert line of the backtest: the alert contract plus the incident it belongs to. */
type AlertLine = Alert & { incident_id: string | null };

function fleetOutage(o: ScenarioOutput): string[] {
  const p: string[] = [];
  const alerts = lines<AlertLine>(o.alerts);
  const updates = lines<AlertUpdate>(o.updates);
  const actions = lines<GovernedAction>(o.actions);
  const members = lines<IncidentMembership>(o.memberships);
  const incidents = alerts.filter((a) => a.rule === 'sync_incident');
  if (incidents.length !== 1) return [`expected exactly 1 sync_incident alert, got ${incidents.length}`];
  const inc = incidents[0]!;
  if (inc.severity !== 'critical') p.push('incident not critical');
  if (inc.details.terminals! < 10) p.push(`incident opened with ${inc.details.terminals} terminals`);
  if (inc.event_ids.length !== 10) p.push(`evidence: expected the first event of 10 terminals, got ${inc.event_ids.length}`);
  const lagAlerts = alerts.filter((a) => a.rule === 'sync_lag');
  if (lagAlerts.length !== 12) p.push(`expected 12 sync_lag alerts (one per offline terminal), got ${lagAlerts.length}`);
  const closes = updates.filter((u) => u.alert_id === inc.alert_id);
  if (closes.length !== 1) p.push(`expected 1 update closing the incident, got ${closes.length}`);
  else if (closes[0]!.details.terminals !== 12) p.push(`incident closed with ${closes[0]!.details.terminals} terminals, expected 12`);
  else if (closes[0]!.details.still_open !== 0) p.push(`every terminal recovered: the close should say still_open 0, got ${closes[0]!.details.still_open}`);
  const suppressed = actions.filter((a) => a.decision === 'suppressed');
  if (suppressed.length === 0) p.push('no NOTIFY_MERCHANT suppressed');
  for (const s of suppressed) {
    if (s.kind !== 'NOTIFY_MERCHANT' || s.incident_id !== inc.alert_id) p.push(`suppressed ${s.kind} ${s.action_id} not a notification of the incident`);
  }
  const lagNotices = actions.filter((a) => a.rule === 'sync_lag' && a.kind === 'NOTIFY_MERCHANT');
  if (lagNotices.length !== 12) p.push(`expected a decision for each of the 12 sync_lag notifications, got ${lagNotices.length}`);
  if (lagNotices.filter((a) => a.decision === 'issued').length !== 9) p.push('expected the first 9 sync_lag notifications issued (before the 10th terminal opened the incident)');
  const acquirer = actions.filter((a) => a.rule === 'sync_incident');
  if (acquirer.length !== 1 || acquirer[0]!.kind !== 'NOTIFY_ACQUIRER') p.push('expected one NOTIFY_ACQUIRER for the incident');
  // Capped freezes: at most 20 per hour fleet-wide and 3 per merchant; the rest became reviews.
  const freezes = actions.filter((a) => FREEZE.has(a.kind) && a.decision === 'issued');
  const downgraded = actions.filter((a) => a.decision === 'downgraded');
  if (freezes.length !== 20) p.push(`expected 20 freezes issued (the fleet cap), got ${freezes.length}`);
  const perMerchant = new Map<string, number>();
  for (const f of freezes) perMerchant.set(f.merchant_id, (perMerchant.get(f.merchant_id) ?? 0) + 1);
  for (const [m, c] of perMerchant) if (c > 3) p.push(`${c} freezes at ${m}`);
  if (downgraded.length !== 6) p.push(`expected 6 freezes downgraded (26 proposed), got ${downgraded.length}`);
  if (!downgraded.some((d) => d.decision_reason === 'freeze_cap_merchant')) p.push('no downgrade by the merchant cap');
  if (!downgraded.some((d) => d.decision_reason === 'freeze_cap_fleet')) p.push('no downgrade by the fleet cap');
  for (const d of downgraded) if (d.kind !== 'REVIEW_REFUND') p.push(`downgraded to ${d.kind}`);
  // The incident's id on its member alerts: all 12 sync_lag alerts (10 opened it, 2 joined), each once
  // in the memberships; every suppressed notification's alert is a member; nothing else is.
  const memberIds = new Set(members.map((m) => m.alert_id));
  if (members.length !== memberIds.size) p.push('an alert linked twice');
  if (members.some((m) => m.incident_id !== inc.alert_id)) p.push('a membership of another incident');
  for (const a of lagAlerts) if (a.incident_id !== inc.alert_id || !memberIds.has(a.alert_id)) p.push(`sync_lag alert ${a.alert_id} of ${a.terminal_id} without the incident id`);
  if (members.filter((m) => m.role === 'opening').length !== 10) p.push('expected the 10 starts that opened the incident as opening members');
  for (const a of alerts) if (a.incident_id !== null && !memberIds.has(a.alert_id)) p.push(`alert ${a.alert_id} (${a.rule}) carries an incident id without a membership`);
  for (const a of alerts) if (memberIds.has(a.alert_id) && a.incident_id !== inc.alert_id) p.push(`member alert ${a.alert_id} without the incident id`);
  for (const s of suppressed) if (!memberIds.has(s.alert_id)) p.push(`suppressed ${s.action_id}: its alert ${s.alert_id} is not a member`);
  // T02's lost sale (sequence_gap) was seen before its late upload opened the incident: it belongs to it (role before).
  const gaps = alerts.filter((a) => a.rule === 'sequence_gap');
  if (gaps.length !== 1 || gaps[0]!.terminal_id !== 'T02') p.push(`expected one sequence_gap alert (T02), got ${gaps.length}`);
  else {
    const m = members.find((x) => x.alert_id === gaps[0]!.alert_id);
    const entry = members.find((x) => x.terminal_id === 'T02' && x.rule === 'sync_lag');
    if (m?.role !== 'before' || gaps[0]!.incident_id !== inc.alert_id) p.push('the sequence_gap of T02 should belong to the incident with role before');
    else if (entry === undefined || m.joined_at !== entry.joined_at || m.alert_detected_at >= entry.alert_detected_at) p.push("the sequence_gap of T02 should be linked at its terminal's entry, and raised before it");
  }
  if (members.filter((m) => m.role !== 'before').some((m) => m.rule !== 'sync_lag')) p.push('a member other than the sync_lag alerts and the before backlog');
  const circuits = alerts.filter((a) => a.rule === 'freeze_circuit_open');
  if (circuits.length !== 1) p.push(`expected 1 freeze_circuit_open alert, got ${circuits.length}`);
  const circuitEnd = updates.find((u) => u.alert_id === circuits[0]?.alert_id);
  if (circuitEnd?.details.held_back !== 6) p.push(`the circuit's window end should name 6 held back, got ${circuitEnd?.details.held_back}`);
  return p;
}

function scatteredEpisodes(o: ScenarioOutput): string[] {
  const p: string[] = [];
  const alerts = lines<AlertLine>(o.alerts);
  const actions = lines<GovernedAction>(o.actions);
  if (alerts.some((a) => a.incident_id !== null) || o.memberships !== '') p.push('an alert linked to an incident');
  const lag = alerts.filter((a) => a.rule === 'sync_lag');
  if (lag.length !== 15) p.push(`expected 15 sync_lag alerts, got ${lag.length}`);
  if (alerts.some((a) => a.rule === 'sync_incident')) p.push('an incident was opened');
  const notices = actions.filter((a) => a.rule === 'sync_lag');
  if (notices.length !== 15 || notices.some((a) => a.decision !== 'issued')) p.push('every sync_lag notification should be issued');
  return p;
}

export const EXPECTATIONS: Record<'fleet_outage' | 'scattered_episodes', Check> = { fleet_outage: fleetOutage, scattered_episodes: scatteredEpisodes };
