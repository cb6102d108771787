// Shared by generate.ts and golden.test.ts: run a scenario and compare the alerts with its declaration.
import type { Alert, AlertUpdate, RefundReason } from '@tillwatch/schemas';
import { stringify } from 'yaml';
import { backtestLines, defaultRulesConfig, parseRulesConfig, type RulesConfig } from '../../src/index.js';
import { Scenario, T0 } from '../helpers/builder.js';
import type { ScenarioDef } from './definitions.js';

export interface Built {
  lines: string[];
  config: RulesConfig;
  configYaml: string | null;
  problems: string[];
  alerts: Alert[];
  updates: AlertUpdate[];
  refundReasons: RefundReason[];
}

export function runScenario(def: ScenarioDef): Built {
  const s = new Scenario();
  const built = def.build(s);
  const expected = Array.isArray(built) ? built : built.alerts;
  const expectedReasons = Array.isArray(built) ? [] : built.reasons;
  const config = def.config === undefined ? defaultRulesConfig() : parseRulesConfig(def.config);
  const lines = s.lines();
  const { alerts, updates, refundReasons, rejects } = backtestLines(lines, config);
  const problems: string[] = [];
  if (rejects.length > 0) problems.push(`rejected lines: ${JSON.stringify(rejects)}`);
  const key = (rule: string, ids: readonly string[]): string => `${rule}:${[...ids].sort().join(',')}`;
  const got = new Map(alerts.map((a) => [key(a.rule, a.event_ids), a]));
  if (got.size !== alerts.length) problems.push('two alerts share rule and evidence');
  for (const e of expected) {
    const k = key(e.rule, e.evidence.map((t) => t.event_id));
    const a = got.get(k);
    if (!a) {
      problems.push(`missing ${k}`);
      continue;
    }
    got.delete(k);
    if (e.detectedAt !== undefined && a.detected_at !== T0 + e.detectedAt) problems.push(`${k}: detected_at ${a.detected_at - T0} ms after T0, expected ${e.detectedAt}`);
    if (e.terminal !== undefined && a.terminal_id !== e.terminal) problems.push(`${k}: terminal ${a.terminal_id}, expected ${e.terminal}`);
    if (e.details !== undefined && JSON.stringify(a.details) !== JSON.stringify(e.details)) problems.push(`${k}: details ${JSON.stringify(a.details)}, expected ${JSON.stringify(e.details)}`);
    if (e.closed !== undefined) {
      const us = updates.filter((u) => u.alert_id === a.alert_id);
      if (e.closed === null) {
        if (us.length > 0) problems.push(`${k}: closed by ${us.length} update(s), expected none`);
      } else if (us.length !== 1) problems.push(`${k}: closed by ${us.length} update(s), expected one`);
      else {
        const u = us[0]!;
        const { by, ...want } = e.closed;
        const got = { at: u.resolved_at - T0, resolution: u.resolution, details: u.details };
        if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`${k}: closed ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
        if (by !== undefined) {
          const ids = by.map((t) => t.event_id).sort();
          if (JSON.stringify(u.resolved_by_event_ids) !== JSON.stringify(ids)) problems.push(`${k}: resolved by ${JSON.stringify(u.resolved_by_event_ids)}, expected ${JSON.stringify(ids)}`);
        }
      }
    }
  }
  for (const k of got.keys()) problems.push(`unexpected ${k}`);
  // An update is never a second alert: it closes an alert of the same run.
  const ids = new Set(alerts.map((a) => a.alert_id));
  for (const u of updates) if (!ids.has(u.alert_id)) problems.push(`update ${u.update_id} of an alert not raised: ${u.alert_id}`);
  // Every approved refund, reversal and void has exactly one reason (a redelivery repeats the same record).
  const reasonOf = new Map<string, string>();
  for (const r of refundReasons) {
    const prev = reasonOf.get(r.event_id);
    if (prev !== undefined && prev !== JSON.stringify(r)) problems.push(`two different refund reasons for ${r.event_id}`);
    reasonOf.set(r.event_id, JSON.stringify(r));
  }
  for (const t of s.events) {
    if (!('kind' in t)) continue; // a heartbeat
    if (t.status === 'APPROVED' && t.kind !== 'SALE' && !reasonOf.has(t.event_id)) problems.push(`no refund reason for ${t.event_id}`);
    if (!(t.status === 'APPROVED' && t.kind !== 'SALE') && reasonOf.has(t.event_id)) problems.push(`a refund reason for ${t.event_id}, not an approved refund, reversal or void`);
  }
  for (const [t, code] of expectedReasons) {
    const got = reasonOf.get(t.event_id);
    const reason = got === undefined ? 'none' : (JSON.parse(got) as RefundReason).reason;
    if (reason !== code) problems.push(`refund reason of ${t.event_id} (${t.kind} ${t.txn_id}): ${reason}, expected ${code}`);
  }
  return { lines, config, configYaml: def.config === undefined ? null : stringify(def.config), problems, alerts, updates, refundReasons };
}
