// Golden scenarios of the second stage, through the same path as `tillwatch backtest` (both stages):
// events.jsonl -> alerts (engine + stage, with incident_id), alert updates, the governor's actions, incident
// memberships, byte for byte, plus
// the declared expectations (scenarios/expectations.ts). Regenerate: npx tsx packages/stage/test/scenarios/generate.ts
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { contractJson } from '@tillwatch/schemas';
import { SCENARIOS } from './scenarios/build.js';
import { EXPECTATIONS } from './scenarios/expectations.js';
import { runScenario } from './scenarios/run.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'scenarios');

describe('stage golden scenarios', () => {
  for (const name of Object.keys(SCENARIOS) as Array<keyof typeof SCENARIOS>) {
    it(name, async () => {
      const events = join(dir, name, 'events.jsonl');
      // The committed input is what build.ts makes (the story in code and the file agree).
      expect(await readFile(events, 'utf8')).toBe(SCENARIOS[name]().map((t) => contractJson('transaction', t)).join('\n') + '\n');
      const out = await runScenario(events);
      expect(EXPECTATIONS[name](out)).toEqual([]);
      expect(out.alerts).toBe(await readFile(join(dir, name, 'expected.jsonl'), 'utf8'));
      expect(out.updates).toBe(await readFile(join(dir, name, 'expected-updates.jsonl'), 'utf8'));
      expect(out.actions).toBe(await readFile(join(dir, name, 'expected-actions.jsonl'), 'utf8'));
      expect(out.memberships).toBe(await readFile(join(dir, name, 'expected-memberships.jsonl'), 'utf8'));
    });
  }
});
