// Changelog value encoding, in isolation: JSON (first), msgpackr (second), the writer in
// changelog-codec.ts in the previous format (0x01: MessagePack, the bytes msgpackr writes) and in
// the one in use (0x02: dictionary keys as one byte), on the entity values the engine really
// writes for a simulated fleet.
//   npx tsx load-tests/src/codec-bench.ts [events=200000] [terminals=20000] [rounds=3]
import { loadavg } from 'node:os';
import { Packr } from 'msgpackr';
import { createChangelogView, createRuleEngine, defaultRulesConfig } from '@tillwatch/rules';
import { createFleet } from '@tillwatch/simulator';
import { decodeChangelogValue, encodeChangelogValue, encodeChangelogValueV1 } from '@tillwatch/stream';

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
// The encoder before issue 12's second pass: msgpackr, self-contained maps, then the format byte copied in front.
const packr = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });
const msgpackr = (v: unknown) => {
  const body = packr.pack(v);
  const out = Buffer.allocUnsafe(body.length + 1);
  out[0] = 1;
  body.copy(out, 1);
  return out;
};
const json = values.map((v) => Buffer.from(JSON.stringify(v)));
const bin = values.map((v) => encodeChangelogValue(v));
const binV1 = values.map((v) => encodeChangelogValueV1(v));
const bytes = (bs: Buffer[]) => Math.round(bs.reduce((a, b) => a + b.length, 0) / bs.length);
console.log(`${values.length} changelog values from ${N} events; load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
const best = { json: Infinity, msgpackr: Infinity, v1: Infinity, binary: Infinity, decodeV1: Infinity, decode: Infinity };
const ROUNDS = Number(process.argv[4] ?? 3);
for (let round = 0; round < ROUNDS; round++) {
  const ej = time(() => values.forEach((v) => Buffer.from(JSON.stringify(v))));
  const eb = time(() => values.forEach((v) => encodeChangelogValue(v)));
  const e1 = time(() => values.forEach((v) => encodeChangelogValueV1(v)));
  const d1 = time(() => binV1.forEach((b) => decodeChangelogValue(b)));
  const em = time(() => values.forEach((v) => msgpackr(v)));
  const dj = time(() => json.forEach((b) => JSON.parse(b.toString('utf8'))));
  const db = time(() => bin.forEach((b) => decodeChangelogValue(b)));
  const us = (ms: number) => ((ms * 1000) / values.length).toFixed(2);
  best.json = Math.min(best.json, ej);
  best.msgpackr = Math.min(best.msgpackr, em);
  best.binary = Math.min(best.binary, eb);
  best.v1 = Math.min(best.v1, e1);
  best.decodeV1 = Math.min(best.decodeV1, d1);
  best.decode = Math.min(best.decode, db);
  console.log(`round ${round}: encode µs/value JSON ${us(ej)} msgpackr ${us(em)} binary 0x01 ${us(e1)} binary 0x02 ${us(eb)}; decode JSON ${us(dj)} 0x01 ${us(d1)} 0x02 ${us(db)}; bytes/value JSON ${bytes(json)} 0x01 ${bytes(binV1)} 0x02 ${bytes(bin)}`);
}
// The fastest round of each is the least disturbed by other work on a shared machine.
const us = (ms: number) => ((ms * 1000) / values.length).toFixed(2);
console.log(`best of ${ROUNDS} rounds: encode µs/value JSON ${us(best.json)} msgpackr ${us(best.msgpackr)} 0x01 ${us(best.v1)} 0x02 (in use) ${us(best.binary)}; decode 0x01 (msgpackr) ${us(best.decodeV1)} 0x02 ${us(best.decode)}`);
