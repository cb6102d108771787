// Contract objects (@tillwatch/schemas) <-> table rows (schemas/clickhouse migrations).
//
// Times: contracts carry epoch ms numbers; the columns are DateTime64(3, 'UTC'). We send them as
// 'YYYY-MM-DD hh:mm:ss.sss' strings (UTC). Why not the number: a JSON integer into DateTime64 is
// parsed by heuristics that differ between date_time_input_format=basic (server default) and
// best_effort (chDB default) and misread small values (an 8-digit number can be taken as
// YYYYMMDD); the fixed-width string means the same to both parsers. Reading back, the column comes
// out in the same format (date_time_output_format=simple, set by the factory) and is parsed as UTC.
import type { Action, ActionDecision, Alert, IncidentMembership, AlertUpdate, DeadLetter, RefundReason, Transaction } from '@tillwatch/schemas';

/** DateTime64(3) range accepted by ClickHouse: [1900-01-01, 2299-12-31 23:59:59.999]. */
const MIN_MS = Date.UTC(1900, 0, 1);
const MAX_MS = Date.UTC(2299, 11, 31, 23, 59, 59, 999);

/**
 * A contract value that its column cannot hold, found before anything is sent (a time outside
 * DateTime64's range, which ClickHouse would not reject but silently clamp or misread). The row
 * can never be written as it is: writers treat it like a row ClickHouse rejected. A RangeError, so
 * callers that check for that keep working.
 */
export class RowValueError extends RangeError {
  override name = 'RowValueError';
}

/** epoch ms -> 'YYYY-MM-DD hh:mm:ss.sss' (UTC), the literal every ClickHouse parser reads the same way. */
export function toDateTime64(ms: number): string {
  if (!Number.isFinite(ms)) throw new RowValueError(`not a finite epoch-ms time: ${ms}`);
  if (ms < MIN_MS || ms > MAX_MS) throw new RowValueError(`epoch ms ${ms} is outside DateTime64 range (1900..2299)`);
  const iso = new Date(Math.trunc(ms)).toISOString(); // 2023-11-14T22:13:20.123Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}`;
}

/** 'YYYY-MM-DD hh:mm:ss[.fff]' (UTC) -> epoch ms. Also accepts a number (already epoch ms). */
export function fromDateTime64(value: string | number): number {
  if (typeof value === 'number') return value;
  const ms = Date.parse(`${value.replace(' ', 'T')}Z`);
  if (Number.isNaN(ms)) throw new RangeError(`cannot parse ClickHouse DateTime64 ${JSON.stringify(value)}`);
  return ms;
}

const toNumber = (v: number | string): number => (typeof v === 'number' ? v : Number(v));

// JSON has no NaN/Infinity; ClickHouse's JSON input reads the strings "nan", "inf", "-inf" into
// Float64. (Read back they come out as null unless output_format_json_quote_denormals=1.)
function float(v: number): number | string {
  if (Number.isFinite(v)) return v;
  if (Number.isNaN(v)) return 'nan';
  return v > 0 ? 'inf' : '-inf';
}

// ---------------------------------------------------------------------------------------------
// Row shapes as written (JSONEachRow). ingested_at is filled by the table DEFAULT.

export interface TransactionRow {
  event_id: string;
  txn_id: string;
  kind: Transaction['kind'];
  status: Transaction['status'];
  terminal_id: string;
  merchant_id: string;
  card_token: string;
  amount_minor: number;
  currency: string;
  terminal_seq: number;
  original_txn_id: string | null;
  event_time: string;
  received_time: string;
}

export interface AlertRow {
  alert_id: string;
  rule: string;
  rule_version: number;
  severity: Alert['severity'];
  terminal_id: string;
  merchant_id: string;
  card_token: string | null;
  event_ids: string[];
  window_start: string;
  window_end: string;
  detected_at: string;
  summary: string;
  details: Record<string, number | string>;
  /** Rules document version in force (migration 008); absent when read from a table without it (006's alerts_by_detected). */
  rules_version?: number;
  currency: string | null;
  amount_minor: number | null;
}

export interface AlertUpdateRow {
  update_id: string;
  alert_id: string;
  rule: string;
  rule_version: number;
  terminal_id: string;
  merchant_id: string;
  status: AlertUpdate['status'];
  resolution: AlertUpdate['resolution'];
  resolved_by_event_ids: string[];
  resolved_at: string;
  summary: string;
  details: Record<string, number | string>;
}

export interface RefundReasonRow {
  event_id: string;
  txn_id: string;
  original_txn_id: string | null;
  kind: RefundReason['kind'];
  reason: RefundReason['reason'];
  merchant_id: string;
  terminal_id: string;
  amount_minor: number;
  currency: string;
  event_time: string;
  received_time: string;
  alert_id: string | null;
}

export interface ActionRow {
  action_id: string;
  kind: Action['kind'];
  target_type: Action['target_type'];
  target_id: string;
  merchant_id: string;
  terminal_id: string;
  alert_id: string;
  rule: string;
  reason: string;
  issued_at: string;
  expires_at: string | null;
}

export interface DeadLetterRow {
  reason: string;
  error_class: string;
  stage: string;
  source_topic: string;
  source_partition: number;
  source_offset: number;
  /** Raw Kafka key/value as base64 (JSON strings cannot carry arbitrary bytes). */
  key_base64: string | null;
  value_base64: string | null;
  failed_at: string;
}

export type TriageStatus = 'open' | 'acknowledged' | 'resolved' | 'false_positive';
export const TriageStatusValues = ['open', 'acknowledged', 'resolved', 'false_positive'] as const;

export interface AlertTriage {
  alert_id: string;
  status: TriageStatus;
  actor: string;
  note: string;
  /** epoch ms */
  at: number;
}

export interface AlertTriageRow {
  alert_id: string;
  status: TriageStatus;
  actor: string;
  note: string;
  at: string;
}

// ---------------------------------------------------------------------------------------------
// contract -> row

export function toTransactionRow(t: Transaction): TransactionRow {
  return {
    event_id: t.event_id,
    txn_id: t.txn_id,
    kind: t.kind,
    status: t.status,
    terminal_id: t.terminal_id,
    merchant_id: t.merchant_id,
    card_token: t.card_token,
    amount_minor: t.amount_minor,
    currency: t.currency,
    terminal_seq: t.terminal_seq,
    original_txn_id: t.original_txn_id,
    event_time: toDateTime64(t.event_time),
    received_time: toDateTime64(t.received_time),
  };
}

export function toAlertRow(a: Alert): AlertRow {
  const details: Record<string, number | string> = {};
  for (const [k, v] of Object.entries(a.details)) details[k] = float(v);
  return {
    alert_id: a.alert_id,
    rule: a.rule,
    rule_version: a.rule_version,
    severity: a.severity,
    terminal_id: a.terminal_id,
    merchant_id: a.merchant_id,
    card_token: a.card_token,
    event_ids: [...a.event_ids],
    window_start: toDateTime64(a.window_start),
    window_end: toDateTime64(a.window_end),
    detected_at: toDateTime64(a.detected_at),
    summary: a.summary,
    details,
    rules_version: a.rules_version,
    currency: a.currency ?? null,
    amount_minor: a.amount_minor ?? null,
  };
}

const floats = (m: Record<string, number>): Record<string, number | string> => {
  const out: Record<string, number | string> = {};
  for (const [k, v] of Object.entries(m)) out[k] = float(v);
  return out;
};

export function toAlertUpdateRow(u: AlertUpdate): AlertUpdateRow {
  return {
    update_id: u.update_id,
    alert_id: u.alert_id,
    rule: u.rule,
    rule_version: u.rule_version,
    terminal_id: u.terminal_id,
    merchant_id: u.merchant_id,
    status: u.status,
    resolution: u.resolution,
    resolved_by_event_ids: [...u.resolved_by_event_ids],
    resolved_at: toDateTime64(u.resolved_at),
    summary: u.summary,
    details: floats(u.details),
  };
}

export function toRefundReasonRow(r: RefundReason): RefundReasonRow {
  return {
    event_id: r.event_id,
    txn_id: r.txn_id,
    original_txn_id: r.original_txn_id,
    kind: r.kind,
    reason: r.reason,
    merchant_id: r.merchant_id,
    terminal_id: r.terminal_id,
    amount_minor: r.amount_minor,
    currency: r.currency,
    event_time: toDateTime64(r.event_time),
    received_time: toDateTime64(r.received_time),
    alert_id: r.alert_id ?? null,
  };
}

export function toActionRow(a: Action): ActionRow {
  return {
    action_id: a.action_id,
    kind: a.kind,
    target_type: a.target_type,
    target_id: a.target_id,
    merchant_id: a.merchant_id,
    terminal_id: a.terminal_id,
    alert_id: a.alert_id,
    rule: a.rule,
    reason: a.reason,
    issued_at: toDateTime64(a.issued_at),
    expires_at: a.expires_at === null ? null : toDateTime64(a.expires_at),
  };
}

/** A governor decision (schemas/avro/action-decision.avsc) as a row of action_decisions (012). */
export interface ActionDecisionRow {
  decision_id: string;
  action_id: string;
  kind: string;
  final_action_id: string | null;
  final_kind: string | null;
  alert_id: string;
  rule: string;
  terminal_id: string;
  merchant_id: string;
  target_type: string;
  target_id: string;
  decision: ActionDecision['decision'];
  reason: string;
  incident_id: string | null;
  decided_at: string;
}

export function toActionDecisionRow(d: ActionDecision): ActionDecisionRow {
  return {
    decision_id: d.decision_id,
    action_id: d.action_id,
    kind: d.kind,
    final_action_id: d.final_action_id,
    final_kind: d.final_kind,
    alert_id: d.alert_id,
    rule: d.rule,
    terminal_id: d.terminal_id,
    merchant_id: d.merchant_id,
    target_type: d.target_type,
    target_id: d.target_id,
    decision: d.decision,
    reason: d.reason,
    incident_id: d.incident_id,
    decided_at: toDateTime64(d.decided_at),
  };
}

/** An incident membership (schemas/avro/incident-membership.avsc) as a row of incident_members (014). */
export interface IncidentMemberRow {
  membership_id: string;
  incident_id: string;
  alert_id: string;
  rule: string;
  terminal_id: string;
  merchant_id: string;
  role: IncidentMembership['role'];
  alert_detected_at: string;
  joined_at: string;
}

export function toIncidentMemberRow(m: IncidentMembership): IncidentMemberRow {
  return {
    membership_id: m.membership_id,
    incident_id: m.incident_id,
    alert_id: m.alert_id,
    rule: m.rule,
    terminal_id: m.terminal_id,
    merchant_id: m.merchant_id,
    role: m.role,
    alert_detected_at: toDateTime64(m.alert_detected_at),
    joined_at: toDateTime64(m.joined_at),
  };
}

export function toDeadLetterRow(d: DeadLetter): DeadLetterRow {
  return {
    reason: d.reason,
    error_class: d.error_class,
    stage: d.stage,
    source_topic: d.source_topic,
    source_partition: d.source_partition,
    source_offset: d.source_offset,
    key_base64: d.key === null ? null : Buffer.from(d.key).toString('base64'),
    value_base64: d.value === null ? null : Buffer.from(d.value).toString('base64'),
    failed_at: toDateTime64(d.failed_at),
  };
}

export function toAlertTriageRow(t: AlertTriage): AlertTriageRow {
  return { alert_id: t.alert_id, status: t.status, actor: t.actor, note: t.note, at: toDateTime64(t.at) };
}

// ---------------------------------------------------------------------------------------------
// row (as read with `SELECT <columns> ... FORMAT JSONEachRow`) -> contract.
// Int64 columns may arrive as strings if a caller overrides output_format_json_quote_64bit_integers.

type Read<T> = { [K in keyof T]: T[K] extends number ? number | string : T[K] };

export function fromTransactionRow(r: Read<TransactionRow>): Transaction {
  return {
    event_id: r.event_id,
    txn_id: r.txn_id,
    kind: r.kind,
    status: r.status,
    terminal_id: r.terminal_id,
    merchant_id: r.merchant_id,
    card_token: r.card_token,
    amount_minor: toNumber(r.amount_minor),
    currency: r.currency,
    terminal_seq: toNumber(r.terminal_seq),
    original_txn_id: r.original_txn_id,
    event_time: fromDateTime64(r.event_time),
    received_time: fromDateTime64(r.received_time),
  };
}

/** Alert rows as read (ContractColumns.alerts, from `alerts` or migration 015's alerts_by_detected_v2); currency/amount_minor null: no single amount. */
export function fromAlertRow(r: Omit<Read<AlertRow>, 'details' | 'currency' | 'amount_minor'> & { details: Record<string, number | null>; currency?: string | null; amount_minor?: number | string | null }): Alert {
  const details: Record<string, number> = {};
  for (const [k, v] of Object.entries(r.details)) details[k] = v === null ? Number.NaN : v;
  return {
    alert_id: r.alert_id,
    rule: r.rule,
    rule_version: toNumber(r.rule_version),
    severity: r.severity,
    terminal_id: r.terminal_id,
    merchant_id: r.merchant_id,
    card_token: r.card_token,
    event_ids: r.event_ids,
    window_start: fromDateTime64(r.window_start),
    window_end: fromDateTime64(r.window_end),
    detected_at: fromDateTime64(r.detected_at),
    summary: r.summary,
    details,
    rules_version: r.rules_version === undefined || r.rules_version === null ? 0 : toNumber(r.rules_version),
    ...(r.currency != null ? { currency: r.currency } : {}),
    ...(r.amount_minor != null ? { amount_minor: toNumber(r.amount_minor) } : {}),
  };
}

const fromFloats = (m: Record<string, number | null>): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(m)) out[k] = v === null ? Number.NaN : v;
  return out;
};

export function fromAlertUpdateRow(r: Omit<Read<AlertUpdateRow>, 'details'> & { details: Record<string, number | null> }): AlertUpdate {
  return {
    update_id: r.update_id,
    alert_id: r.alert_id,
    rule: r.rule,
    rule_version: toNumber(r.rule_version),
    terminal_id: r.terminal_id,
    merchant_id: r.merchant_id,
    status: r.status,
    resolution: r.resolution,
    resolved_by_event_ids: r.resolved_by_event_ids,
    resolved_at: fromDateTime64(r.resolved_at),
    summary: r.summary,
    details: fromFloats(r.details),
  };
}

export function fromRefundReasonRow(r: Read<RefundReasonRow>): RefundReason {
  return {
    event_id: r.event_id,
    txn_id: r.txn_id,
    original_txn_id: r.original_txn_id,
    kind: r.kind,
    reason: r.reason,
    merchant_id: r.merchant_id,
    terminal_id: r.terminal_id,
    amount_minor: toNumber(r.amount_minor),
    currency: r.currency,
    event_time: fromDateTime64(r.event_time),
    received_time: fromDateTime64(r.received_time),
    alert_id: r.alert_id,
  };
}

export function fromActionRow(r: Read<ActionRow>): Action {
  return {
    action_id: r.action_id,
    kind: r.kind,
    target_type: r.target_type,
    target_id: r.target_id,
    merchant_id: r.merchant_id,
    terminal_id: r.terminal_id,
    alert_id: r.alert_id,
    rule: r.rule,
    reason: r.reason,
    issued_at: fromDateTime64(r.issued_at),
    expires_at: r.expires_at === null ? null : fromDateTime64(r.expires_at),
  };
}

export function fromDeadLetterRow(r: Read<DeadLetterRow>): DeadLetter {
  return {
    reason: r.reason,
    error_class: r.error_class,
    stage: r.stage,
    source_topic: r.source_topic,
    source_partition: toNumber(r.source_partition),
    source_offset: toNumber(r.source_offset),
    key: r.key_base64 === null ? null : Buffer.from(r.key_base64, 'base64'),
    value: r.value_base64 === null ? null : Buffer.from(r.value_base64, 'base64'),
    failed_at: fromDateTime64(r.failed_at),
  };
}

/** Column lists for reading contract-shaped rows back (excludes ingested_at and ALIAS columns). */
export const ContractColumns = {
  transactions: 'event_id, txn_id, kind, status, terminal_id, merchant_id, card_token, amount_minor, currency, terminal_seq, original_txn_id, event_time, received_time',
  alerts: 'alert_id, rule, rule_version, severity, terminal_id, merchant_id, card_token, event_ids, window_start, window_end, detected_at, summary, details, rules_version, currency, amount_minor',
  actions: 'action_id, kind, target_type, target_id, merchant_id, terminal_id, alert_id, rule, reason, issued_at, expires_at',
  alert_updates: 'update_id, alert_id, rule, rule_version, terminal_id, merchant_id, status, resolution, resolved_by_event_ids, resolved_at, summary, details',
  refund_reasons: 'event_id, txn_id, original_txn_id, kind, reason, merchant_id, terminal_id, amount_minor, currency, event_time, received_time, alert_id',
  dead_letters: 'reason, error_class, stage, source_topic, source_partition, source_offset, key_base64, value_base64, failed_at',
  action_decisions: 'decision_id, action_id, kind, final_action_id, final_kind, alert_id, rule, terminal_id, merchant_id, target_type, target_id, decision, reason, incident_id, decided_at',
  incident_members: 'membership_id, incident_id, alert_id, rule, terminal_id, merchant_id, role, alert_detected_at, joined_at',
} as const;
