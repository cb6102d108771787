// Throughput of the live second stage alone, on the real broker:
//   KAFKA_BROKERS=... SCHEMA_REGISTRY_URL=... npx tsx services/stage/bench/stage-throughput.ts [records]
// A run-scoped stage input topic is filled first with [records] internal records as six detector
// partitions would publish them (the mix of packages/stage/bench/stage-bench.ts: terminal activity,
// episode starts and ends, proposed actions with freezes, a watermark per detector batch of ~200 ms);
// then the stage service (createStage: read_committed consumer, one Kafka transaction per fetched
// batch with its outputs, changelog and offsets) is started and timed from its first consumed record
// to its last (group join and restore excluded). Prints records/s, decisions and transactions (the
// restore's fencing marker transaction not counted).
// Topics are deleted at the end.
import { defaultRulesConfig } from '@tillwatch/rules';
import { BENCH_PARTITIONS, benchStageRecords } from '@tillwatch/stage/bench-records';
import { deleteScopedTopics, provisionScopedTopics, randomId } from '@tillwatch/stream';
import { testKafka } from '@tillwatch/stream/testing';
import { createRegistry } from '@tillwatch/telemetry';
import { createStage } from '../src/stage.js';
import { createStageMetrics } from '../src/metrics.js';

const total = Number(process.argv[2] ?? 200_000);
const P = BENCH_PARTITIONS;

const { kafka, registry, logger } = testKafka('stage-throughput');
const topics = await provisionScopedTopics(kafka, registry, P, randomId('stagetp'));
const metrics = createStageMetrics(createRegistry({ service: 'stage-throughput', defaultMetrics: false }));
let decisions = 0;
let alerts = 0;
const stage = createStage({
  kafka,
  registry,
  rules: defaultRulesConfig(),
  metrics,
  logger,
  groupId: randomId('g-stagetp'),
  topics: { ...topics, input: topics.stageInput, changelog: topics.stageChangelog },
  onCommitted: (out) => {
    decisions += out.decisions.length;
    alerts += out.alerts.length;
  },
});
try {
  const records = benchStageRecords(total, { closeAll: true });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let i = 0; i < records.length; i += 5000) {
    await producer.send({ topic: topics.stageInput, acks: -1, messages: records.slice(i, i + 5000).map((r) => ({ key: null, partition: 0, value: Buffer.from(JSON.stringify(r)) })) });
  }
  await producer.disconnect();
  const consumed = async (): Promise<number> => (await metrics.consumed.get()).values.reduce((n, v) => n + v.value, 0);
  const txnSeconds = async (): Promise<{ count: number; sum: number }> => {
    const v = (await metrics.txnLatency.get()).values;
    return { count: v.find((x) => x.metricName?.endsWith('_count'))?.value ?? 0, sum: v.find((x) => x.metricName?.endsWith('_sum'))?.value ?? 0 };
  };
  await stage.start();
  let first = 0;
  const deadline = Date.now() + 600_000;
  for (;;) {
    const c = await consumed();
    if (c > 0 && first === 0) first = performance.now();
    if (c >= records.length && (await txnSeconds()).count > 0 && decisions > 0) break;
    if (Date.now() > deadline) throw new Error(`stage consumed ${c} of ${records.length} records in 10 min`);
    await new Promise((r) => setTimeout(r, 20));
  }
  // The last batch is counted as consumed when fetched: wait for its transaction.
  const actionsIn = records.filter((r) => r.type === 'action').length;
  while (decisions < actionsIn && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const seconds = (performance.now() - first) / 1000;
  const txn = await txnSeconds();
  console.log(JSON.stringify({ records: records.length, proposedActions: actionsIn, seconds: +seconds.toFixed(2), recordsPerSecond: Math.round(records.length / seconds), decisions, alerts, stageTransactions: txn.count - 1, meanTransactionMs: txn.count > 1 ? Math.round((txn.sum / txn.count) * 1000) : null, recordsPerTransaction: txn.count > 1 ? Math.round(records.length / (txn.count - 1)) : null }));
} finally {
  await stage.stop();
  await deleteScopedTopics(kafka, topics);
}
