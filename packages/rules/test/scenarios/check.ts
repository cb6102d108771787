// Shared by generate.ts and golden.test.ts: run a scenario and compare the alerts with its declaration.
import type { Alert, AlertUpdate } from '@tillwatch/schemas';
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
}

export function runScenario(def: ScenarioDef): Built {
  const s = new Scenario();
  const expected = def.build(s);
  const config = def.config === undefined ? defaultRulesConfig() : parseRulesConfig(def.config);
  const lines = s.lines();
  const { alerts, updates, rejects } = backtestLines(lines, config);
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
  return { lines, config, configYaml: def.config === undefined ? null : stringify(def.config), problems, alerts, updates };
}
