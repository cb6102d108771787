// Golden scenarios: test/scenarios/<name>/events.jsonl -> expected.jsonl, byte for byte. The files
// are written by test/scenarios/generate.ts from definitions.ts, which also declares what each
// scenario must produce; both the files and the declarations are checked here.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { backtestLines, defaultRulesConfig, loadRulesConfig } from '../src/index.js';
import { runScenario } from './scenarios/check.js';
import { scenarios } from './scenarios/definitions.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'scenarios');
const readLines = (f: string): string[] => readFileSync(f, 'utf8').split('\n').filter((l) => l.length > 0);

describe('golden scenarios', () => {
  const onDisk = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();

  it('every scenario definition has its files and every folder a definition', () => {
    expect(onDisk).toEqual(scenarios.map((s) => s.name).sort());
  });

  for (const name of onDisk) {
    it(`${name}: events.jsonl gives exactly expected.jsonl (and expected-updates.jsonl, expected-refunds.jsonl, none when absent)`, () => {
      const cfgFile = join(dir, name, 'config.yaml');
      const config = existsSync(cfgFile) ? loadRulesConfig(readFileSync(cfgFile, 'utf8'), 'yaml') : defaultRulesConfig();
      const { alerts, updates, refundReasons, rejects } = backtestLines(readLines(join(dir, name, 'events.jsonl')), config);
      expect(rejects).toEqual([]);
      // rules_version (the rules document's version) is checked here and left out of the golden lines,
      // which predate it: the alerts, their ids included, must not change with it.
      for (const a of alerts) expect(a.rules_version).toBe(config.version);
      expect(alerts.map(({ rules_version: _, ...a }) => JSON.stringify(a))).toEqual(readLines(join(dir, name, 'expected.jsonl')));
      const updFile = join(dir, name, 'expected-updates.jsonl');
      expect(updates.map((u) => JSON.stringify(u))).toEqual(existsSync(updFile) ? readLines(updFile) : []);
      const refFile = join(dir, name, 'expected-refunds.jsonl');
      expect(refundReasons.map((r) => JSON.stringify(r))).toEqual(existsSync(refFile) ? readLines(refFile) : []);
    });
  }

  for (const def of scenarios) {
    it(`${def.name}: ${def.about}`, () => {
      const r = runScenario(def);
      expect(r.problems).toEqual([]);
      // The files on disk were generated from this definition (no drift).
      expect(r.lines).toEqual(readLines(join(dir, def.name, 'events.jsonl')));
    });
  }
});
