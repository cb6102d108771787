// Regenerates the stage's golden scenarios: npx tsx packages/stage/test/scenarios/generate.ts
// Writes events.jsonl (from build.ts) and the outputs of both stages; refuses when a declaration in
// expectations.ts does not hold.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { contractJson } from '@tillwatch/schemas';
import { SCENARIOS } from './build.js';
import { EXPECTATIONS } from './expectations.js';
import { runScenario } from './run.js';

const here = dirname(fileURLToPath(import.meta.url));
for (const [name, build] of Object.entries(SCENARIOS)) {
  const dir = join(here, name);
  await mkdir(dir, { recursive: true });
  const events = join(dir, 'events.jsonl');
  await writeFile(events, build().map((t) => contractJson('transaction', t)).join('\n') + '\n');
  const out = await runScenario(events);
  const problems = EXPECTATIONS[name as keyof typeof EXPECTATIONS](out);
  if (problems.length > 0) {
    console.error(`${name}: the stages disagree with the declaration:\n  ${problems.join('\n  ')}`);
    process.exitCode = 1;
    continue;
  }
  await writeFile(join(dir, 'expected.jsonl'), out.alerts);
  await writeFile(join(dir, 'expected-updates.jsonl'), out.updates);
  await writeFile(join(dir, 'expected-actions.jsonl'), out.actions);
  await writeFile(join(dir, 'expected-memberships.jsonl'), out.memberships);
  console.log(`${name}: written`);
}
