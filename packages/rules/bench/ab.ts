// Same-process A/B of rule engines from several checkouts: `npx tsx packages/rules/bench/ab.ts
// [--events N] [--rounds R] [--prefetch N] label=ROOT ...` (ROOT: a checkout of this repository, e.g. a worktree of an
// older commit made with `git worktree add --detach /tmp/old <commit>` plus a `node_modules` symlink;
// `.` is this one). The engines consume the same pre-parsed events of the bench file in alternating
// chunks of 5,000 (order rotated per chunk), each timed apart (wall and CPU), so load from other
// processes on a shared machine hits every engine alike. Prints per round events/s, CPU µs per event
// and each engine's CPU-time ratio against the first (>1: faster than the first); then the medians
// over the rounds after the first (warm-up). Engines that have engine.prefetch get it every N events
// (default 8, 0: never) unless their label starts with "np-" (e.g. `np-after=. after=.`); a label "p<N>-" (e.g.
// `p16-after=.`) gives that engine a hint distance of its own. Run `npm run bench:rules` once first (it writes the file).
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Transaction } from '@tillwatch/schemas';
import { BENCH_FILE_NAME, readBenchEvents } from './bench-file.js';
import type * as EngineModuleNs from '../src/index.js';

type EngineModule = typeof EngineModuleNs;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const EVENTS = arg('--events', 600_000);
const ROUNDS = arg('--rounds', 5);
const CHUNK = 5000;
const PREFETCH = arg('--prefetch', 8);
interface PrefetchingEngine {
  prefetch(inputs: readonly Transaction[], from: number, to: number): void;
}
const specs = process.argv
  .slice(2)
  .filter((a) => a.includes('='))
  .map((a) => {
    const [label, root] = a.split('=') as [string, string];
    return { label, root: resolve(root) };
  });
if (specs.length < 2) throw new Error('usage: ab.ts [--events N] [--rounds R] label=ROOT label=ROOT ...');

const root = fileURLToPath(new URL('../../../', import.meta.url));
const file = join(root, '.cache', 'bench', BENCH_FILE_NAME);
const events = readBenchEvents(file, EVENTS);
const mods = (await Promise.all(specs.map((s) => import(join(s.root, 'packages/rules/src/index.ts'))))) as EngineModule[];
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ratios: number[][] = specs.map(() => []);
const us: number[][] = specs.map(() => []);
console.log(`${events.length.toLocaleString('en-US')} events, chunks of ${CHUNK}, ${ROUNDS} rounds`);
for (let round = 0; round < ROUNDS; round++) {
  const engines = mods.map((m) => m.createRuleEngine(m.defaultRulesConfig(), { expectedSales: events.length }));
  // engine.prefetch every PREFETCH events where the engine has it (older ones do not), unless the label starts with "np-".
  const prefetchOf = engines.map((en, e) => PREFETCH > 0 && typeof (en as Partial<PrefetchingEngine>).prefetch === 'function' && !specs[e]!.label.startsWith('np-'));
  // A label "p<N>-..." (e.g. p16-after=.) gives that engine its own hint distance N.
  const every = specs.map((s) => Number(/^p(\d+)-/.exec(s.label)?.[1] ?? PREFETCH));
  const wall = specs.map(() => 0);
  const cpu = specs.map(() => 0);
  gc();
  for (let c = 0, k = 0; c < events.length; c += CHUNK, k++) {
    const end = Math.min(events.length, c + CHUNK);
    for (let j = 0; j < engines.length; j++) {
      const e = (j + k) % engines.length;
      const engine = engines[e]!;
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const pf = prefetchOf[e]!;
      const n = every[e]!;
      for (let i = c; i < end; i++) {
        if (pf && (i - c) % n === 0) (engine as PrefetchingEngine).prefetch(events, i, i + n);
        engine.onTransaction(events[i]!);
      }
      wall[e]! += performance.now() - t0;
      const u = process.cpuUsage(c0);
      cpu[e]! += u.user + u.system;
    }
  }
  const parts = specs.map((s, e) => {
    const perEvent = cpu[e]! / events.length;
    if (round > 0) {
      us[e]!.push(perEvent);
      ratios[e]!.push(cpu[0]! / cpu[e]!);
    }
    return `${s.label} ${Math.round((events.length * 1000) / wall[e]!).toLocaleString('en-US')}/s ${perEvent.toFixed(3)} µs/ev (${(cpu[0]! / cpu[e]!).toFixed(3)})`;
  });
  console.log(`round ${round}: ${parts.join(' | ')}`);
}
if (ROUNDS > 1) {
  console.log(`median over rounds 1..${ROUNDS - 1}: ${specs.map((s, e) => `${s.label} ${median(us[e]!).toFixed(3)} µs/ev (CPU ratio vs ${specs[0]!.label} ${median(ratios[e]!).toFixed(3)})`).join(' | ')}`);
}
