// Foundation contract, against the real broker and registry: an Avro transaction registered,
// produced, consumed and decoded through the registry; BACKWARD compatibility enforced.
import { afterAll, describe, expect, it } from 'vitest';
import { AvroSchemas, valueSubject, type Transaction } from '@tillwatch/schemas';
import { createAvroSerde, FatalError, provisionTopics, registerContracts, SchemaIncompatibleError } from '@tillwatch/stream';
import { randomId, randomTopics, testKafka } from '@tillwatch/stream/testing';

const { kafka, registry } = testKafka();
const admin = kafka.admin();
const created: string[] = [];

afterAll(async () => {
  if (created.length) await admin.deleteTopics({ topics: created }).catch(() => undefined);
  await admin.disconnect();
});

const txn = (i: number): Transaction => ({
  event_id: `e-${i}`, txn_id: `t-${i}`, kind: 'SALE', status: 'APPROVED', terminal_id: 'T1', merchant_id: `M${i % 3}`, card_token: `tok_${i}`,
  amount_minor: 1000 + i, currency: 'EUR', terminal_seq: i, original_txn_id: null, event_time: 1_700_000_000_000 + i, received_time: 1_700_000_000_500 + i,
});

describe('Kafka + schema registry (real local stack)', () => {
  it('provisions topics idempotently with the changelog compacted and co-partitioned', async () => {
    await admin.connect();
    const topics = randomTopics();
    const name = (r: keyof typeof topics) => topics[r];
    const first = await provisionTopics(admin, { partitions: 3, replicationFactor: 1, topicName: name });
    created.push(...first.created);
    expect(first.created).toHaveLength(Object.keys(topics).length);
    // Rerun with another TOPIC_PARTITIONS (it only sets the count of topics to create): nothing to create, no problem.
    const again = await provisionTopics(admin, { partitions: 1, replicationFactor: 1, topicName: name });
    expect(again.created).toEqual([]);
    const cfg = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: topics.detectorChangelog, configNames: ['cleanup.policy'] }] });
    expect(cfg.resources[0]?.configEntries[0]?.configValue).toBe('compact');
    const subjects = await registerContracts(registry, name);
    expect(Object.keys(subjects)).toContain(valueSubject(topics.transactions));
    expect(await registry.getCompatibility(valueSubject(topics.transactions))).toBe('BACKWARD');
  });

  it('refuses topics that existed with the wrong layout (heartbeats not co-partitioned, a changelog not compacted, rules with 2 partitions), naming each', async () => {
    await admin.connect();
    const topics = randomTopics();
    const name = (r: keyof typeof topics) => topics[r];
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic: topics.heartbeats, numPartitions: 3 },
        { topic: topics.detectorChangelog, numPartitions: 6, configEntries: [{ name: 'cleanup.policy', value: 'delete' }] },
        { topic: topics.rules, numPartitions: 2, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] },
      ],
    });
    created.push(topics.heartbeats, topics.detectorChangelog, topics.rules);
    const e = await provisionTopics(admin, { partitions: 6, replicationFactor: 1, topicName: name }).catch((x: unknown) => x);
    created.push(...Object.values(topics).filter((t) => !created.includes(t)));
    expect(e).toBeInstanceOf(FatalError);
    const m = (e as Error).message;
    expect(m).toContain(`${topics.heartbeats} has 3 partitions but ${topics.transactions} has 6`);
    expect(m).toContain(`${topics.detectorChangelog} has cleanup.policy=delete; it must be compact`);
    expect(m).toContain(`${topics.rules} has 2 partitions; it needs exactly 1`);
    expect(m).not.toContain(topics.alerts);
  });

  it('produces an Avro transaction and consumes it decoded through the registry', async () => {
    const topic = randomId('it-txn');
    await admin.connect();
    // A topic just created can be missing from the broker's metadata for a moment (UNKNOWN_TOPIC_OR_PARTITION,
    // retriable; kafkajs's waitForLeaders retries only LEADER_NOT_AVAILABLE): as provisionTopics does, try again.
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
        break;
      } catch (e) {
        if (attempt >= 5 || (e as { retriable?: boolean }).retriable !== true) throw e;
        await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
      }
    }
    created.push(topic);
    const serde = createAvroSerde<Transaction>(registry, valueSubject(topic), AvroSchemas.transaction);
    await serde.init();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const sent = [txn(1), txn(2), txn(3)];
    await producer.send({ topic, messages: sent.map((t) => ({ key: t.merchant_id, value: serde.encode(t) })) });
    await producer.disconnect();

    // A separate serde instance knows nothing yet: it must learn the writer schema from the registry.
    const reader = createAvroSerde<Transaction>(registry, valueSubject(topic), AvroSchemas.transaction);
    const consumer = kafka.consumer({ groupId: randomId('g'), readUncommitted: false });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const got: Transaction[] = [];
    await new Promise<void>((resolve, reject) => {
      void consumer.run({
        eachBatch: async ({ batch }) => {
          await reader.prefetch(batch.messages.map((m) => m.value));
          for (const m of batch.messages) got.push(reader.decode(m.value));
          if (got.length >= sent.length) resolve();
        },
      }).catch(reject);
    });
    await consumer.disconnect();
    expect(got).toEqual(sent);
  });

  it('rejects a schema change that breaks BACKWARD compatibility', async () => {
    const subject = valueSubject(randomId('it-compat'));
    await registry.setCompatibility(subject, 'BACKWARD');
    await registry.register(subject, AvroSchemas.transaction);
    // Adding a required field without a default: new readers cannot read old data.
    const broken = structuredClone(AvroSchemas.transaction) as { fields: object[] };
    broken.fields.push({ name: 'tip_minor', type: 'long' });
    expect(await registry.isCompatible(subject, broken)).toBe(false);
    await expect(registry.register(subject, broken)).rejects.toBeInstanceOf(SchemaIncompatibleError);
    // Adding an optional field with a default is a compatible evolution.
    const evolved = structuredClone(AvroSchemas.transaction) as { fields: object[] };
    evolved.fields.push({ name: 'tip_minor', type: ['null', 'long'], default: null });
    expect(await registry.isCompatible(subject, evolved)).toBe(true);
    const v2 = await registry.register(subject, evolved);
    expect(v2).toBeGreaterThan(0);
  });
});
