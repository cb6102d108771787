// Event-to-action latency of the live pipeline with the second stage, on the real broker:
//   KAFKA_BROKERS=... SCHEMA_REGISTRY_URL=... npx tsx services/stage/bench/live-latency.ts [events/s] [seconds]
// Run-scoped topics (6 partitions); detector (in-process, stage mode, wall-clock timers on) and stage
// (in-process). Transactions are produced at the given rate with received_time = now; 1 % are refunds
// of unknown sales (refund_without_sale: FREEZE_TERMINAL + NOTIFY_ACQUIRER proposed) and 0.5 % arrive
// 20 min late (sync_lag: NOTIFY_MERCHANT proposed). For every governor decision the stage commits,
// wall time minus the proposing event's received time is recorded; prints p50/p90/p99/max, counts and
// the stage's input records per second. Topics are deleted at the end.
import type { Transaction } from '@tillwatch/schemas';
import { defaultRulesConfig } from '@tillwatch/rules';
import { createDetector } from '@tillwatch/detector';
import { deleteScopedTopics, provisionScopedTopics, randomId } from '@tillwatch/stream';
import { testKafka } from '@tillwatch/stream/testing';
import { createDetectorMetrics, createRegistry } from '@tillwatch/telemetry';
import { createStage } from '../src/stage.js';
import { createStageMetrics } from '../src/metrics.js';
import { produceEvents } from '../../detector/test/support.js';

const rate = Number(process.argv[2] ?? 1000);
const seconds = Number(process.argv[3] ?? 20);
const { kafka, registry, logger } = testKafka('stage-bench');
const prefix = randomId('stagebench');
const topics = await provisionScopedTopics(kafka, registry, 6, prefix);
const latencies: number[] = [];
let stageRecords = 0;
const stageMetrics = createStageMetrics(createRegistry({ service: 'stage-bench', defaultMetrics: false }));
const detector = createDetector({
  kafka,
  registry,
  rules: defaultRulesConfig(),
  metrics: createDetectorMetrics(createRegistry({ service: 'detector-bench', defaultMetrics: false })),
  logger,
  groupId: randomId('g-det'),
  topics: { ...topics, changelog: topics.detectorChangelog },
  stage: { topic: topics.stageInput },
});
const stage = createStage({
  kafka,
  registry,
  rules: defaultRulesConfig(),
  metrics: stageMetrics,
  logger,
  groupId: randomId('g-stage'),
  topics: { ...topics, input: topics.stageInput, changelog: topics.stageChangelog },
  onCommitted: (out) => {
    const wall = Date.now();
    for (const d of out.decisions) latencies.push(wall - d.decided_at);
  },
});
try {
  await Promise.all([detector.start(), stage.start()]);
  let seq = 0;
  const seqs = new Map<string, number>();
  const started = Date.now();
  let sent = 0;
  while (Date.now() - started < seconds * 1000) {
    const tick = Date.now();
    const batch: Transaction[] = [];
    for (let i = 0; i < rate / 10; i++) {
      const n = ++seq;
      const term = `T${n % 600}`;
      const s = (seqs.get(term) ?? 0) + 1;
      seqs.set(term, s);
      const now = Date.now();
      const r = (n * 7919) % 1000;
      const refund = r < 10;
      const late = r >= 10 && r < 15;
      batch.push({
        event_id: `ev-${prefix}-${n}`, txn_id: `tx-${n}`, kind: refund ? 'REFUND' : 'SALE', status: 'APPROVED', terminal_id: term, merchant_id: `M${n % 300}`,
        card_token: `tok_${n % 5000}`, amount_minor: 1000 + (n % 900), currency: 'EUR', terminal_seq: s, original_txn_id: refund ? `unknown-${n}` : null,
        event_time: late ? now - 20 * 60_000 : now - 500, received_time: now,
      });
    }
    await produceEvents(kafka, registry, topics.transactions, batch);
    sent += batch.length;
    await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - tick))));
  }
  // Let the last decisions through.
  await new Promise((r) => setTimeout(r, 8000));
  const elapsed = (Date.now() - started) / 1000;
  stageRecords = (await stageMetrics.consumed.get()).values.reduce((n, v) => n + v.value, 0);
  const sorted = [...latencies].sort((a, b) => a - b);
  const q = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
  console.log(JSON.stringify({ eventsSent: sent, targetRate: rate, seconds: +elapsed.toFixed(1), decisions: sorted.length, eventToActionMs: { p50: q(0.5), p90: q(0.9), p99: q(0.99), max: sorted.at(-1) ?? NaN }, stageInputRecords: stageRecords, stageInputRecordsPerSecond: Math.round(stageRecords / elapsed) }));
} finally {
  await detector.stop();
  await stage.stop();
  await deleteScopedTopics(kafka, topics);
}
