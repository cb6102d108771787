// Proves kafkajs 2.2.4 against the broker the local stack runs (Kafka 4.x, KRaft).
//
// Kafka 4.0 removed old protocol versions (KIP-896) and changed the transaction protocol (KIP-890,
// feature `transaction.version`). kafkajs negotiates versions through ApiVersions and only knows the
// pre-KIP-890 transaction APIs, so this file exercises exactly what the detector needs: admin
// createTopics with a compacted topic, a consume-transform-produce transaction (two output topics +
// sendOffsets for a group), an aborted transaction, and read_committed consumers.
//
// Assumes the stack is up (`tillwatch stack up`); KAFKA_BROKERS overrides 127.0.0.1:9092.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import type { Admin, Consumer, EachMessagePayload, Producer } from 'kafkajs';

const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',').map((s) => s.trim());

function uid(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/**
 * Committed offsets of `groupId` on `topic` by partition, polled until every one is set (not -1) or
 * 10 s passed. EndTxn returns once the coordinator logged PREPARE_COMMIT; the COMMIT markers (here on
 * __consumer_offsets) are written asynchronously, and kafkajs' OffsetFetch (v4) cannot ask for stable
 * offsets (require_stable came with v7, KIP-447). So a reader right after a commit may see -1.
 */
async function committedOffsets(admin: Admin, groupId: string, topic: string): Promise<Record<number, string>> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
    const partitions = offsets[0]?.partitions ?? [];
    const byPartition = Object.fromEntries(partitions.map((p) => [p.partition, p.offset]));
    if (partitions.every((p) => p.offset !== '-1') || Date.now() > deadline) return byPartition;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Reads `topics` from the beginning with a fresh group until `expected` records arrived (or a timeout). */
async function readAll(
  kafka: Kafka,
  topics: string[],
  expected: number,
  opts: { readUncommitted: boolean; settleMs?: number },
): Promise<Array<{ topic: string; value: string }>> {
  // A short maxWaitTime: disconnect() waits for the in-flight fetch, which would otherwise idle 5 s.
  const consumer: Consumer = kafka.consumer({
    groupId: uid('reader'),
    readUncommitted: opts.readUncommitted,
    maxWaitTimeInMs: 200,
  });
  const seen: Array<{ topic: string; value: string }> = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timeout = setTimeout(() => reject(new Error(`timed out: saw ${JSON.stringify(seen)}`)), 30_000);
      let settle: NodeJS.Timeout | undefined;
      consumer
        .run({
          eachMessage: async ({ topic, message }: EachMessagePayload) => {
            seen.push({ topic, value: message.value?.toString() ?? '' });
            if (seen.length >= expected && settle === undefined) {
              // Keep reading a moment longer: a record that must NOT be seen would arrive now.
              settle = setTimeout(() => {
                clearTimeout(timeout);
                resolve();
              }, opts.settleMs ?? 1_500);
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return seen;
}

describe('kafkajs 2.2.4 against the local broker', () => {
  const kafka = new Kafka({ clientId: 'local-stack-compat', brokers, logLevel: logLevel.NOTHING });
  let admin: Admin;

  beforeAll(async () => {
    admin = kafka.admin();
    await admin.connect();
  });

  afterAll(async () => {
    await admin.disconnect();
  });

  it('describes the cluster and the API versions it negotiates', async () => {
    const cluster = await admin.describeCluster();
    expect(cluster.brokers.length).toBe(1);
    expect(cluster.controller).not.toBeNull();
  });

  it('creates a normal and a compacted topic and reads their config back', async () => {
    const plain = uid('compat.plain');
    const compacted = uid('compat.changelog');
    const created = await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic: plain, numPartitions: 3, replicationFactor: 1 },
        {
          topic: compacted,
          numPartitions: 2,
          replicationFactor: 1,
          configEntries: [
            { name: 'cleanup.policy', value: 'compact' },
            { name: 'min.compaction.lag.ms', value: '0' },
            { name: 'segment.ms', value: '60000' },
          ],
        },
      ],
    });
    expect(created).toBe(true);

    const meta = await admin.fetchTopicMetadata({ topics: [plain, compacted] });
    const partitions = Object.fromEntries(meta.topics.map((t) => [t.name, t.partitions.length]));
    expect(partitions).toEqual({ [plain]: 3, [compacted]: 2 });

    // ResourceTypes.TOPIC = 2 (kafkajs exports ConfigResourceTypes; the number keeps the test plain).
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: 2, name: compacted, configNames: ['cleanup.policy'] }],
    });
    const entry = described.resources[0]?.configEntries.find((c) => c.configName === 'cleanup.policy');
    expect(entry?.configValue).toBe('compact');

    // A keyed write and read on the compacted topic (what changelog restore does).
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: compacted,
      messages: [
        { key: 'terminal-1', value: 'v1', partition: 0 },
        { key: 'terminal-1', value: 'v2', partition: 0 },
        { key: 'terminal-1', value: null, partition: 0 }, // tombstone
      ],
    });
    await producer.disconnect();
    const offsets = await admin.fetchTopicOffsets(compacted);
    expect(offsets.find((o) => o.partition === 0)?.high).toBe('3');

    await admin.deleteTopics({ topics: [plain, compacted] });
  });

  describe('transactions (idempotent, maxInFlightRequests 1)', () => {
    const input = uid('compat.in');
    const alerts = uid('compat.alerts');
    const actions = uid('compat.actions');
    const group = uid('compat.detector');
    let producer: Producer;

    beforeAll(async () => {
      await admin.createTopics({
        waitForLeaders: true,
        topics: [input, alerts, actions].map((topic) => ({ topic, numPartitions: 1, replicationFactor: 1 })),
      });
      const plain = kafka.producer();
      await plain.connect();
      await plain.send({ topic: input, messages: [{ value: 'in-0' }, { value: 'in-1' }, { value: 'in-2' }] });
      await plain.disconnect();

      producer = kafka.producer({
        transactionalId: uid('compat.txn'),
        idempotent: true,
        maxInFlightRequests: 1,
      });
      await producer.connect();
    });

    afterAll(async () => {
      await producer.disconnect();
      await admin.deleteTopics({ topics: [input, alerts, actions] });
    });

    it('commits a transaction that writes two topics and the consumed offsets of a group', async () => {
      const txn = await producer.transaction();
      await txn.send({ topic: alerts, messages: [{ key: 'm1', value: 'alert-committed-1' }] });
      await txn.send({ topic: actions, messages: [{ key: 'm1', value: 'action-committed-1' }] });
      // Offsets are "next offset to read": after consuming in-0 and in-1 the group resumes at 2.
      await txn.sendOffsets({
        consumerGroupId: group,
        topics: [{ topic: input, partitions: [{ partition: 0, offset: '2' }] }],
      });
      await txn.commit();

      expect(await committedOffsets(admin, group, input)).toEqual({ 0: '2' });
    });

    it('aborts a transaction: read_committed consumers never see its records', async () => {
      const aborted = await producer.transaction();
      await aborted.send({ topic: alerts, messages: [{ key: 'm2', value: 'alert-ABORTED' }] });
      await aborted.send({ topic: actions, messages: [{ key: 'm2', value: 'action-ABORTED' }] });
      await aborted.sendOffsets({
        consumerGroupId: group,
        topics: [{ topic: input, partitions: [{ partition: 0, offset: '3' }] }],
      });
      await aborted.abort();

      // The aborted offsets did not move the group (after the ABORT marker, the committed 2 stands).
      await new Promise((r) => setTimeout(r, 500));
      expect(await committedOffsets(admin, group, input)).toEqual({ 0: '2' });

      // A later committed transaction on the same producer still works after an abort.
      const next = await producer.transaction();
      await next.send({ topic: alerts, messages: [{ key: 'm3', value: 'alert-committed-2' }] });
      await next.commit();

      const visible = await readAll(kafka, [alerts, actions], 3, { readUncommitted: false });
      expect(visible.map((r) => r.value).sort()).toEqual(
        ['action-committed-1', 'alert-committed-1', 'alert-committed-2'].sort(),
      );

      // The aborted records really are in the log: read_uncommitted sees them.
      const all = await readAll(kafka, [alerts, actions], 5, { readUncommitted: true });
      expect(all.map((r) => r.value)).toEqual(expect.arrayContaining(['alert-ABORTED', 'action-ABORTED']));
    });

    it('runs the detector loop: a live group member commits its offsets inside the transaction', async () => {
      // The detector's shape: a consumer of group G (autoCommit off) and a transactional producer that
      // sends outputs and G's offsets in one transaction per batch. kafkajs sends TxnOffsetCommit v1,
      // without generation and member id (KIP-447 added them in v3); the broker must accept that for
      // a group that has live members.
      const source = uid('compat.loop.in');
      const sink = uid('compat.loop.out');
      const loopGroup = uid('compat.loop');
      await admin.createTopics({
        waitForLeaders: true,
        topics: [source, sink].map((topic) => ({ topic, numPartitions: 2, replicationFactor: 1 })),
      });
      const plain = kafka.producer();
      await plain.connect();
      await plain.send({
        topic: source,
        messages: Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: `v${i}`, partition: i % 2 })),
      });
      await plain.disconnect();

      const loopProducer = kafka.producer({ transactionalId: uid('compat.loop.txn'), idempotent: true, maxInFlightRequests: 1 });
      await loopProducer.connect();
      const consumer = kafka.consumer({ groupId: loopGroup, readUncommitted: false, maxWaitTimeInMs: 200 });
      await consumer.connect();
      await consumer.subscribe({ topics: [source], fromBeginning: true });
      let processed = 0;
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          if (batch.messages.length === 0) return;
          const txn = await loopProducer.transaction();
          try {
            await txn.send({
              topic: sink,
              messages: batch.messages.map((m) => ({ key: m.key, value: `out-${m.value?.toString() ?? ''}` })),
            });
            const last = batch.messages[batch.messages.length - 1];
            await txn.sendOffsets({
              consumerGroupId: loopGroup,
              topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: String(Number(last?.offset) + 1) }] }],
            });
            await txn.commit();
            processed += batch.messages.length;
          } catch (error) {
            await txn.abort();
            throw error;
          }
        },
      });
      const deadline = Date.now() + 20_000;
      while (processed < 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      await consumer.disconnect();
      await loopProducer.disconnect();
      expect(processed).toBe(10);

      expect(await committedOffsets(admin, loopGroup, source)).toEqual({ 0: '5', 1: '5' });
      const out = await readAll(kafka, [sink], 10, { readUncommitted: false, settleMs: 500 });
      expect(out.map((r) => r.value).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `out-v${i}`).sort());
      await admin.deleteTopics({ topics: [source, sink] });
    });

    it('hides an open transaction from read_committed until it commits', async () => {
      const topic = uid('compat.pending');
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1, replicationFactor: 1 }] });
      const open = await producer.transaction();
      await open.send({ topic, messages: [{ value: 'pending' }] });

      const consumer = kafka.consumer({ groupId: uid('reader'), readUncommitted: false, maxWaitTimeInMs: 200 });
      const seen: string[] = [];
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          seen.push(message.value?.toString() ?? '');
        },
      });
      await new Promise((r) => setTimeout(r, 2_000));
      expect(seen).toEqual([]);

      await open.commit();
      const deadline = Date.now() + 15_000;
      while (seen.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      await consumer.disconnect();
      expect(seen).toEqual(['pending']);
      await admin.deleteTopics({ topics: [topic] });
    });
  });
});
