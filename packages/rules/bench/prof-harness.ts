// Profiling harness (from the repository root):
//   npx esbuild packages/rules/bench/prof-harness.ts --bundle --platform=node --format=esm --external:yaml \
//     --external:zod --outfile=.cache/prof/prof.mjs && ln -sfn ../schemas/avro .cache/avro &&
//   node --cpu-prof --cpu-prof-dir=/tmp/prof .cache/prof/prof.mjs [--events N] [--rounds R] [--prefetch N] [--no-hint]
// (a bundle keeps line numbers that tsx's transform hides; the schemas package reads ../avro next to
// the bundle). Runs the engine alone on the pre-parsed bench file (`npm run bench:rules` writes it) and
// prints events/s and CPU µs/event per round.
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import { BENCH_FILE_NAME, readBenchEvents } from './bench-file.js';
import { createRuleEngine, defaultRulesConfig } from '../src/index.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const EVENTS = arg('--events', 1_200_000);
const ROUNDS = arg('--rounds', 2);
/** engine.prefetch every this many events, as bench.ts does (0: off). */
const PREFETCH = arg('--prefetch', 8);
/** `--no-hint`: no capacity hint (buffers grow by doubling), as bench.ts's "no hint" row. */
const NO_HINT = process.argv.includes('--no-hint');
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const file = join(process.cwd(), '.cache', 'bench', BENCH_FILE_NAME);
const events = readBenchEvents(file, EVENTS);
for (let round = 0; round < ROUNDS; round++) {
  const engine = createRuleEngine(defaultRulesConfig(), NO_HINT ? {} : { expectedSales: events.length });
  gc(); // construction allocates the buffers; collect before timing (as bench.ts does)
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let alerts = 0;
  for (let i = 0; i < events.length; i++) {
    if (PREFETCH > 0 && i % PREFETCH === 0) engine.prefetch(events, i, i + PREFETCH);
    alerts += engine.onTransaction(events[i]!).alerts.length;
  }
  const wall = performance.now() - t0;
  const u = process.cpuUsage(c0);
  console.log(`round ${round}: ${Math.round((events.length * 1000) / wall).toLocaleString('en-US')} events/s, ${((u.user + u.system) / events.length).toFixed(3)} µs/event CPU (system ${(u.system / events.length).toFixed(3)}), ${alerts} alerts`);
}
