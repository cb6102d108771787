// Writes the golden files: npx tsx packages/rules/test/scenarios/generate.ts
// Refuses to write a scenario whose alerts differ from its declaration in definitions.ts.
import { mkdirSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scenarios } from './definitions.js';
import { runScenario } from './check.js';

const here = dirname(fileURLToPath(import.meta.url));
let failed = 0;
for (const def of scenarios) {
  const r = runScenario(def);
  if (r.problems.length > 0) {
    failed++;
    console.error(`${def.name}:\n  ${r.problems.join('\n  ')}`);
    continue;
  }
  const dir = join(here, def.name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'events.jsonl'), r.lines.join('\n') + '\n');
  writeFileSync(join(dir, 'expected.jsonl'), r.alerts.map(({ rules_version: _, ...a }) => JSON.stringify(a)).join('\n') + (r.alerts.length ? '\n' : ''));
  // Alert updates (EngineOutput.updates), only for scenarios that produce some.
  const upd = join(dir, 'expected-updates.jsonl');
  if (r.updates.length > 0) writeFileSync(upd, r.updates.map((u) => JSON.stringify(u)).join('\n') + '\n');
  else if (existsSync(upd)) rmSync(upd);
  // Refund reasons (EngineOutput.refundReasons), only for scenarios with approved refunds, reversals or voids.
  const ref = join(dir, 'expected-refunds.jsonl');
  if (r.refundReasons.length > 0) writeFileSync(ref, r.refundReasons.map((x) => JSON.stringify(x)).join('\n') + '\n');
  else if (existsSync(ref)) rmSync(ref);
  const cfg = join(dir, 'config.yaml');
  if (r.configYaml !== null) writeFileSync(cfg, `# ${def.about}\n${r.configYaml}`);
  else if (existsSync(cfg)) rmSync(cfg);
  console.log(`${def.name}: ${r.lines.length} events, ${r.alerts.length} alerts, ${r.updates.length} updates, ${r.refundReasons.length} refund reasons`);
}
if (failed > 0) {
  console.error(`${failed} scenario(s) disagree with their declaration; nothing written for them`);
  process.exitCode = 1;
}
