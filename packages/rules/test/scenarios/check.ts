// Shared by generate.ts and golden.test.ts: run a scenario and compare the alerts with its declaration.
import type { Alert } from '@tillwatch/schemas';
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
}

export function runScenario(def: ScenarioDef): Built {
  const s = new Scenario();
  const expected = def.build(s);
  const config = def.config === undefined ? defaultRulesConfig() : parseRulesConfig(def.config);
  const lines = s.lines();
  const { alerts, rejects } = backtestLines(lines, config);
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
  }
  for (const k of got.keys()) problems.push(`unexpected ${k}`);
  return { lines, config, configYaml: def.config === undefined ? null : stringify(def.config), problems, alerts };
}
