// Consumer lag tells the truth (real local broker): it is measured on a timer from the group's
// committed offsets against the partitions' end offsets, so a consumer that stops committing shows
// a lag that grows with the input, not the value of its last good batch; after a rebalance, a
// member reports only the partitions it owns. Also: an aborted transaction and the replaced
// producer are counted.
import { afterAll, describe, expect, it } from 'vitest';
import type { Kafka } from 'kafkajs';
import type { Registry } from 'prom-client';
import { createDetectorMetrics, createRegistry } from '@tillwatch/telemetry';
import { createTransactionalProcessor, waitGroupCaughtUp, type OutputMessage, type Task } from '@tillwatch/stream';
import { randomId, testKafka } from '@tillwatch/stream/testing';

const { kafka, logger } = testKafka('lag-it');
const created: string[] = [];
afterAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: created }).catch(() => undefined);
  await admin.disconnect();
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const PARTITIONS = 2;

/**
 * Forwards every record to the output topic. While `stalled()`, it writes to a topic name the broker
 * refuses (INVALID_TOPIC_EXCEPTION, inside the transaction): every batch's transaction aborts, the
 * processor retries with its offsets kept, nothing commits.
 */
function forwardTask(outputTopic: string, stalled: () => boolean): Task {
  return {
    restore() {},
    process(_topic, records) {
      return { messages: records.map((r): OutputMessage => ({ topic: stalled() ? 'not a valid topic name!' : outputTopic, key: r.key, value: r.value as Buffer })) };
    },
    tick: () => ({ messages: [] }),
    takeChanges: () => [],
  };
}

async function topicsFor(id: string) {
  const topics = { input: `${id}.input`, changelog: `${id}.changelog`, output: `${id}.output`, dlq: `${id}.dlq` };
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: topics.input, numPartitions: PARTITIONS },
      { topic: topics.changelog, numPartitions: PARTITIONS, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] },
      { topic: topics.output, numPartitions: PARTITIONS },
      { topic: topics.dlq, numPartitions: 1 },
    ],
  });
  await admin.disconnect();
  created.push(...Object.values(topics));
  return topics;
}

function member(k: Kafka, topics: Awaited<ReturnType<typeof topicsFor>>, groupId: string, stalled: () => boolean = () => false) {
  const registry = createRegistry({ service: 'lag-it', defaultMetrics: false });
  const processor = createTransactionalProcessor({
    kafka: k,
    groupId,
    transactionalIdPrefix: `${groupId}.txn`,
    inputs: [{ topic: topics.input, decode: (v) => v }],
    changelogTopic: topics.changelog,
    dlqTopic: topics.dlq,
    encodeDeadLetter: () => Buffer.alloc(0),
    createTask: () => forwardTask(topics.output, stalled),
    metrics: createDetectorMetrics(registry),
    logger,
    tickIntervalMs: 0,
    sessionTimeoutMs: 6_000,
    lagIntervalMs: 200,
  });
  return { processor, registry };
}

async function produce(topic: string, n: number): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, acks: -1, messages: Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: String(i) })) });
  await producer.disconnect();
}

/** A per-partition gauge (default: the consumer lag) as {partition: value} for one topic. */
async function lagOf(registry: Registry, topic: string, metric = 'tillwatch_consumer_lag_records'): Promise<Record<string, number>> {
  const values = (await registry.getSingleMetric(metric)!.get()).values;
  return Object.fromEntries(values.filter((v) => v.labels['topic'] === topic).map((v) => [String(v.labels['partition']), v.value]));
}
const total = (lag: Record<string, number>) => Object.values(lag).reduce((s, v) => s + v, 0);

async function waitFor<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v)} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function counter(registry: Registry, name: string): Promise<Record<string, number>> {
  const values = (await registry.getSingleMetric(name)!.get()).values;
  return Object.fromEntries(values.map((v) => [Object.values(v.labels).join(',') || '', v.value]));
}

describe('consumer lag on a timer (real broker)', () => {
  it('a consumer that stops committing shows a lag that grows with the input; aborts and producer replacements are counted', { timeout: 120_000 }, async () => {
    const topics = await topicsFor(randomId('lag'));
    const groupId = randomId('g-lag');
    let stalled = false;
    const m = member(kafka, topics, groupId, () => stalled);
    const admin = kafka.admin();
    await admin.connect();
    await m.processor.start();
    try {
      await produce(topics.input, 20);
      await waitGroupCaughtUp(admin, groupId, topics.input, 30_000);
      // Caught up: both owned partitions are reported, at zero.
      await waitFor('lag after catching up', () => lagOf(m.registry, topics.input), (l) => Object.keys(l).length === PARTITIONS && total(l) === 0);

      stalled = true;
      await produce(topics.input, 50);
      await waitFor('lag while stalled', () => lagOf(m.registry, topics.input), (l) => total(l) >= 50);
      await produce(topics.input, 70);
      // Nothing commits meanwhile: only the timer sees this.
      await waitFor('lag still growing', () => lagOf(m.registry, topics.input), (l) => total(l) >= 120);
      expect(total(await lagOf(m.registry, topics.input))).toBe(120);
      // The committed offsets do not move while stalled: 20 records committed before, on both partitions.
      expect(total(await lagOf(m.registry, topics.input, 'tillwatch_consumer_committed_offset'))).toBe(20);
      // The failed batches aborted their transactions (a retriable error).
      await waitFor('aborted transactions', () => counter(m.registry, 'tillwatch_kafka_transactions_aborted_total'), (c) => (c['retriable'] ?? 0) > 0, 60_000);

      stalled = false;
      await waitGroupCaughtUp(admin, groupId, topics.input, 60_000);
      await waitFor('lag after recovering', () => lagOf(m.registry, topics.input), (l) => total(l) === 0);
      await waitFor('committed offsets after recovering', () => lagOf(m.registry, topics.input, 'tillwatch_consumer_committed_offset'), (l) => total(l) === 140);
      // Each retry after an aborted transaction starts with a new producer (same transactional.id).
      expect((await counter(m.registry, 'tillwatch_kafka_producer_replacements_total'))['']).toBeGreaterThan(0);
    } finally {
      stalled = false;
      await m.processor.stop();
      await admin.disconnect();
    }
  });

  it('after a rebalance each member reports only the partitions it owns', { timeout: 90_000 }, async () => {
    const topics = await topicsFor(randomId('lag-rb'));
    const groupId = randomId('g-lag-rb');
    await produce(topics.input, 10);
    const a = member(kafka, topics, groupId);
    await a.processor.start();
    const b = member(kafka, topics, groupId);
    try {
      await waitFor('first member reports both partitions', () => lagOf(a.registry, topics.input), (l) => Object.keys(l).length === PARTITIONS);
      await b.processor.start();
      const owned = (p: typeof a) => p.processor.assignedPartitions().map(String).sort();
      await waitFor('partitions split between the members', async () => [owned(a), owned(b)], ([x, y]) => x!.length === 1 && y!.length === 1, 45_000);
      for (const x of [a, b]) {
        const labels = await waitFor('labels = owned partitions', async () => Object.keys(await lagOf(x.registry, topics.input)).sort(), (l) => JSON.stringify(l) === JSON.stringify(owned(x)));
        expect(labels).toEqual(owned(x));
      }
      expect(owned(a)).not.toEqual(owned(b));
    } finally {
      await Promise.all([a.processor.stop(), b.processor.stop()]);
    }
  });
});
