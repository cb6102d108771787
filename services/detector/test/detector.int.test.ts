// The detector against the real broker and registry, each test on its own topics and group.
import { afterAll, describe, expect, it } from 'vitest';
import { AvroSchemas, valueSubject, type Alert, type DeadLetter, type TopicRole, type Transaction } from '@tillwatch/schemas';
import { defaultRulesConfig } from '@tillwatch/rules';
import { randomId } from '@tillwatch/stream';
import { testKafka } from '@tillwatch/stream/testing';
import { createDetectorMetrics, createRegistry } from '@tillwatch/telemetry';
import { createDetector } from '@tillwatch/detector';
import { backtest, closeStreamTime, deleteTopics, ids, produceEvents, readAll, scenario, setupTopics, sleep, waitCommitted } from './support.js';

const { kafka, registry, logger } = testKafka('detector-it');
const cleanup: Record<TopicRole, string>[] = [];
afterAll(async () => {
  for (const t of cleanup) await deleteTopics(kafka, t);
});

function detector(topics: Record<TopicRole, string>, groupId: string) {
  const metricsRegistry = createRegistry({ service: 'detector-test', defaultMetrics: false });
  const metrics = createDetectorMetrics(metricsRegistry);
  const d = createDetector({ kafka, registry, rules: defaultRulesConfig(), metrics, logger, groupId, topics: { ...topics, changelog: topics.detectorChangelog }, wallClockTimers: false, tickIntervalMs: 0 });
  return { d, metrics, metricsRegistry };
}

async function untilReady(d: { ready(): boolean }) {
  for (let i = 0; i < 600 && !d.ready(); i++) await sleep(100);
  expect(d.ready()).toBe(true);
}

describe('detector on the real stack', () => {
  it('sends poison records to the DLQ with their reasons while the rest flows', async () => {
    const topics = await setupTopics(kafka, registry, 2);
    cleanup.push(topics);
    const groupId = randomId('g-dlq');
    const events = scenario(800, 3);
    const { d, metricsRegistry } = detector(topics, groupId);
    await d.start();
    await untilReady(d);

    const serde = (await import('@tillwatch/stream')).createAvroSerde<Transaction>(registry, valueSubject(topics.transactions), AvroSchemas.transaction);
    await serde.init();
    const good = events[0]!;
    const producer = kafka.producer();
    await producer.connect();
    // Two bad fields in one record: the reason names both.
    const negative = serde.encode({ ...good, event_id: 'neg', amount_minor: -5, currency: 'eur' });
    // Times: an event from the future of its arrival (2100) is clock skew; the year 3000 is absurd.
    const skewed = serde.encode({ ...good, event_id: 'skew', event_time: Date.UTC(2100, 0, 1) });
    const year3000 = serde.encode({ ...good, event_id: 'y3000', event_time: Date.UTC(3000, 0, 1) });
    // A received_time 10 days ahead of the wall clock (a gateway with a wrong clock): accepted, it
    // would move the stream clock of the whole partition and make every later record "late".
    const future = Date.now() + 10 * 86_400_000;
    const receivedInFuture = serde.encode({ ...good, event_id: 'future', event_time: future - 1000, received_time: future });
    const unknownId = Buffer.from(serde.encode(good));
    unknownId.writeUInt32BE(987654, 1);
    const truncated = serde.encode(good).subarray(0, 9);
    const missingTerminal = serde.encode({ ...good, event_id: 'noterm', terminal_id: '' });
    const poison = [
      { key: 'M-poison', value: Buffer.from('not avro at all') },
      { key: 'M-poison', value: negative },
      { key: 'M-poison', value: unknownId },
      { key: 'M-poison', value: truncated },
      { key: 'M-poison', value: missingTerminal },
      { key: 'M-poison', value: skewed },
      { key: 'M-poison', value: year3000 },
      { key: 'M-poison', value: receivedInFuture },
    ];
    await producer.send({ topic: topics.transactions, messages: poison });
    await producer.disconnect();
    await produceEvents(kafka, registry, topics.transactions, events);
    await waitCommitted(kafka, groupId, topics.transactions);
    await closeStreamTime(kafka, registry, topics.heartbeats, events.at(-1)!.received_time);
    await waitCommitted(kafka, groupId, topics.heartbeats);
    await d.stop();

    const dead = await readAll<DeadLetter>(kafka, registry, topics.dlq, AvroSchemas.deadLetter);
    expect(dead).toHaveLength(poison.length);
    const byClass = dead.map((x) => x.error_class).sort();
    expect(byClass).toEqual(['ClockSkew', 'ClockSkew', 'InvalidValue', 'InvalidValue', 'InvalidValue', 'UndecodableRecord', 'UndecodableRecord', 'UnknownSchemaId']);
    // Stages as schemas/clickhouse/004_dead_letters.sql documents them: bytes that are no record are
    // refused at decode, records breaking the contract at validate.
    for (const x of dead) expect(x.stage).toBe(['UndecodableRecord', 'UnknownSchemaId'].includes(x.error_class) ? 'detector.decode' : 'detector.validate');
    for (const x of dead) {
      expect(x.source_topic).toBe(topics.transactions);
      expect(x.reason.length).toBeGreaterThan(5);
      expect(x.value).not.toBeNull();
    }
    expect(dead.find((x) => x.reason.includes('amount_minor') && x.reason.includes('currency'))).toBeDefined();
    expect(dead.find((x) => x.error_class === 'ClockSkew' && x.reason.startsWith('event_time'))!.reason).toMatch(/^event_time: 2100-01-01T00:00:00.000Z is .* after received_time/);
    expect(dead.find((x) => x.error_class === 'ClockSkew' && x.reason.startsWith('received_time'))!.reason).toMatch(/^received_time: .* is 2[34][0-9] h ahead of this process's clock/);
    expect(dead.filter((x) => x.reason.includes('outside 2000-01-01 .. 2200-01-01'))).toHaveLength(1);
    expect(dead.find((x) => x.reason.includes('terminal_id'))).toBeDefined();
    // The raw bytes travel with the reason, byte for byte.
    expect(dead.some((x) => x.value!.equals(Buffer.from('not avro at all')))).toBe(true);
    const metrics = await metricsRegistry.metrics();
    expect(metrics).toMatch(/tillwatch_dlq_records_total\{.*error_class="UnknownSchemaId".*\} 1/);

    const got = await readAll<Alert>(kafka, registry, topics.alerts, AvroSchemas.alert);
    expect(ids(got)).toEqual(ids(backtest(events)));
  });

  it('processes events written with a newer compatible schema version (an added optional field)', async () => {
    const topics = await setupTopics(kafka, registry, 2);
    cleanup.push(topics);
    const groupId = randomId('g-v2');
    const events = scenario(1500, 5);
    const v2 = structuredClone(AvroSchemas.transaction) as { fields: object[] };
    v2.fields.push({ name: 'tip_minor', type: ['null', 'long'], default: null });
    // Gateways upgraded to v2 write half the stream; the detector still reads v1.
    const half = events.length / 2;
    await produceEvents(kafka, registry, topics.transactions, events.slice(0, half));
    await produceEvents(kafka, registry, topics.transactions, events.slice(half).map((e) => ({ ...e, tip_minor: 50 })) as Transaction[], v2);
    const { d } = detector(topics, groupId);
    await d.start();
    await waitCommitted(kafka, groupId, topics.transactions);
    await closeStreamTime(kafka, registry, topics.heartbeats, events.at(-1)!.received_time);
    await waitCommitted(kafka, groupId, topics.heartbeats);
    await d.stop();
    const dead = await readAll<DeadLetter>(kafka, registry, topics.dlq, AvroSchemas.deadLetter, 1000);
    expect(dead).toEqual([]);
    const got = await readAll<Alert>(kafka, registry, topics.alerts, AvroSchemas.alert);
    expect(ids(got)).toEqual(ids(backtest(events)));
  });
});
