// Changelog value encoding, in isolation: JSON (before) against the binary encoding (format byte +
// MessagePack), on the entity values the engine really writes for a simulated fleet.
//   npx tsx load-tests/src/codec-bench.ts [events=200000] [terminals=20000]
import { loadavg } from 'node:os';
import { createChangelogView, createRuleEngine, defaultRulesConfig } from '@tillwatch/rules';
import { createFleet } from '@tillwatch/simulator';
import { decodeChangelogValue, encodeChangelogValue } from '@tillwatch/stream';

const N = Number(process.argv[2] ?? 200_000);
const TERMINALS = Number(process.argv[3] ?? 20_000);
const fleet = createFleet({ terminals: TERMINALS, cards: TERMINALS * 10, seed: 1, anomalyRate: 0.005 });
const engine = createRuleEngine(defaultRulesConfig());
const view = createChangelogView(engine);
const values: unknown[] = [];
let now = Date.UTC(2026, 0, 5, 9);
let n = 0;
while (n < N) {
  now += 2;
  for (const e of fleet.next(now)) {
    engine.onTransaction(e);
    n++;
  }
  if (n % 500 < 10) for (const [, v] of view.takeChanges()) if (v !== null) values.push(v);
}
for (const [, v] of view.takeChanges()) if (v !== null) values.push(v);

const time = (f: () => void) => {
  const t = performance.now();
  f();
  return performance.now() - t;
};
const json = values.map((v) => Buffer.from(JSON.stringify(v)));
const bin = values.map((v) => encodeChangelogValue(v));
const bytes = (bs: Buffer[]) => Math.round(bs.reduce((a, b) => a + b.length, 0) / bs.length);
console.log(`${values.length} changelog values from ${N} events; load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
for (let round = 0; round < 3; round++) {
  const ej = time(() => values.forEach((v) => Buffer.from(JSON.stringify(v))));
  const eb = time(() => values.forEach((v) => encodeChangelogValue(v)));
  const dj = time(() => json.forEach((b) => JSON.parse(b.toString('utf8'))));
  const db = time(() => bin.forEach((b) => decodeChangelogValue(b)));
  const us = (ms: number) => ((ms * 1000) / values.length).toFixed(2);
  console.log(`round ${round}: encode µs/value JSON ${us(ej)} binary ${us(eb)}; decode JSON ${us(dj)} binary ${us(db)}; bytes/value JSON ${bytes(json)} binary ${bytes(bin)}`);
}
