// Throughput of the second stage's core alone: npx tsx packages/stage/bench/stage-bench.ts [records]
// Six detector partitions publish a mixed stream (terminal activity, episode starts and ends, proposed
// actions with freezes, a watermark per batch); the partitions' batches are interleaved in arrival
// order as the stage's single input partition would see them, applied in batches of 200 records with
// the changelog taken after each batch (what the live task does). Prints records/s and the outcome.
import { defaultRulesConfig } from '@tillwatch/rules';
import { createStageCore } from '../src/core.js';
import { BENCH_PARTITIONS, benchStageRecords } from './records.js';

const total = Number(process.argv[2] ?? 1_000_000);
const P = BENCH_PARTITIONS;

const records = benchStageRecords(total);
const core = createStageCore({ partitions: P, config: defaultRulesConfig() });
const counts = { alerts: 0, updates: 0, actions: 0, decisions: 0 };
const BATCH = 200;
const t0 = performance.now();
for (let i = 0; i < records.length; i += BATCH) {
  const o = core.apply(records.slice(i, i + BATCH));
  counts.alerts += o.alerts.length;
  counts.updates += o.updates.length;
  counts.actions += o.actions.length;
  counts.decisions += o.decisions.length;
  core.takeChanges();
}
const f = core.flush();
counts.decisions += f.decisions.length;
const ms = performance.now() - t0;
console.log(JSON.stringify({ records: records.length, seconds: +(ms / 1000).toFixed(2), recordsPerSecond: Math.round((records.length * 1000) / ms), ...counts, stats: core.stats() }));
