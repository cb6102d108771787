// The Avro contracts as data, loaded from schemas/avro (the single source of truth).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Topics } from './topics.js';

const avroDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'avro');
const load = (file: string): Record<string, unknown> => JSON.parse(readFileSync(join(avroDir, file), 'utf8')) as Record<string, unknown>;

export const AvroSchemas = {
  transaction: load('transaction.avsc'),
  heartbeat: load('heartbeat.avsc'),
  alert: load('alert.avsc'),
  alertUpdate: load('alert-update.avsc'),
  refundReason: load('refund-reason.avsc'),
  action: load('action.avsc'),
  deadLetter: load('dead-letter.avsc'),
  rulesDocument: load('rules-document.avsc'),
  actionDecision: load('action-decision.avsc'),
  incidentMembership: load('incident-membership.avsc'),
} as const;

export type ContractName = keyof typeof AvroSchemas;

/** Which contract each topic carries (the changelog is internal state, not a registered contract). */
export const TopicContracts: Record<string, ContractName> = {
  [Topics.transactions]: 'transaction',
  [Topics.heartbeats]: 'heartbeat',
  [Topics.alerts]: 'alert',
  [Topics.alertUpdates]: 'alertUpdate',
  [Topics.refundReasons]: 'refundReason',
  [Topics.freezeActions]: 'action',
  [Topics.notifyActions]: 'action',
  [Topics.dlq]: 'deadLetter',
  [Topics.rules]: 'rulesDocument',
  [Topics.shadowAlerts]: 'alert',
  [Topics.actionDecisions]: 'actionDecision',
  [Topics.incidentMembers]: 'incidentMembership',
};

/** Compatibility policy enforced by the registry on every subject. */
export const COMPATIBILITY = 'BACKWARD' as const;

/** Directory holding ClickHouse migrations (NNN_name.sql). */
export const clickhouseMigrationsDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'clickhouse');

/**
 * A contract value as one JSON line: the contract's fields in its order, and a field the value
 * omits that has a null default written as null (what Avro would carry). Backtest and replay write
 * their records through it, so a record decoded from Kafka and the engine's own object give the
 * same line.
 */
export function contractJson(contract: ContractName, value: object): string {
  const fields = (AvroSchemas[contract] as { fields: { name: string; default?: unknown }[] }).fields;
  const v = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const f of fields) out[f.name] = v[f.name] === undefined && f.default === null ? null : v[f.name];
  return JSON.stringify(out);
}
