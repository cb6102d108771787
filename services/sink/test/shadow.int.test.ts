// Shadow alerts (issue 9): pos.alerts.shadow.v1 lands in alerts_shadow (same columns as alerts),
// never in alerts; rules_version is stored in both (migration 008). Real broker, registry, chDB.
import { afterAll, describe, expect, it } from 'vitest';
import { AvroSchemas, valueSubject, type Alert, type TopicRole } from '@tillwatch/schemas';
import { createTestClickHouse, type TestClickHouse } from '@tillwatch/clickhouse/testing';
import { createAvroSerde, deleteScopedTopics, provisionScopedTopics, randomId } from '@tillwatch/stream';
import { testKafka } from '@tillwatch/stream/testing';
import { createRegistry, createSinkMetrics } from '@tillwatch/telemetry';
import { createSink } from '@tillwatch/sink';

const { kafka, registry, logger } = testKafka('sink-shadow-it');
let topics: Record<TopicRole, string> | undefined;
let db: TestClickHouse | undefined;
afterAll(async () => {
  if (topics) await deleteScopedTopics(kafka, topics);
  await db?.dispose();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const alert = (id: string, rulesVersion: number): Alert => ({
  alert_id: id, rule: 'abnormal_amount', rule_version: 1, severity: 'medium', terminal_id: 'T1', merchant_id: 'M1',
  card_token: 'tok_1', event_ids: [`e-${id}`], window_start: 1_767_000_000_000, window_end: 1_767_000_000_000, detected_at: 1_767_000_001_000,
  summary: `alert ${id}`, details: { ratio: 7 }, rules_version: rulesVersion,
});

describe('sink: shadow alerts', () => {
  it('writes pos.alerts.shadow.v1 to alerts_shadow and pos.alerts.v1 to alerts, each with its rules_version', async () => {
    topics = await provisionScopedTopics(kafka, registry, 2);
    db = await createTestClickHouse({ migrate: true });
    const main = createAvroSerde<Alert>(registry, valueSubject(topics.alerts), AvroSchemas.alert);
    const shadow = createAvroSerde<Alert>(registry, valueSubject(topics.shadowAlerts), AvroSchemas.alert);
    await Promise.all([main.init(), shadow.init()]);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: topics.shadowAlerts, messages: ['s1', 's2', 's3'].map((id) => ({ key: 'M1', value: shadow.encode(alert(id, 2)) })) });
    await producer.send({ topic: topics.alerts, messages: ['a1', 'a2'].map((id) => ({ key: 'M1', value: main.encode(alert(id, 5)) })) });
    await producer.disconnect();

    const sink = createSink({ kafka, registry, ch: db.ch, metrics: createSinkMetrics(createRegistry({ service: 'sink-test', defaultMetrics: false })), logger, groupId: randomId('g-sink'), topics, maxRows: 100, maxDelayMs: 100 });
    await sink.start();
    const rows = async (table: string) => {
      const rs = await db!.ch.client.query({ query: `SELECT alert_id, rules_version FROM ${db!.ch.table(table)} FINAL ORDER BY alert_id`, format: 'JSONEachRow' });
      return (await rs.json()) as { alert_id: string; rules_version: number }[];
    };
    for (let i = 0; i < 150 && ((await rows('alerts_shadow')).length < 3 || (await rows('alerts')).length < 2); i++) await sleep(200);
    await sink.stop();
    expect(await rows('alerts_shadow')).toEqual(['s1', 's2', 's3'].map((alert_id) => ({ alert_id, rules_version: 2 })));
    expect(await rows('alerts')).toEqual(['a1', 'a2'].map((alert_id) => ({ alert_id, rules_version: 5 })));
  });
});
