// Rows ClickHouse will not take, against the real broker, registry and embedded ClickHouse. The
// `actions` table is the one an older migration left: its `kind` Enum8 predates NOTIFY_ACQUIRER,
// which the Avro contract (a newer version) already has — the usual way a sink meets a value its
// column cannot hold. ClickHouse rejects that row's batch (UNKNOWN_ELEMENT_OF_ENUM, code 691); the
// sink must write the neighbours, dead-letter that one row, and keep the partition moving. An alert
// with a time outside DateTime64's range takes the other path: the row mapper refuses it before
// ClickHouse (which would clamp it silently), and it is dead-lettered the same way.
import { afterAll, describe, expect, it } from 'vitest';
import { AvroSchemas, valueSubject, type Action, type Alert, type TopicRole } from '@tillwatch/schemas';
import { createTestClickHouse, type TestClickHouse } from '@tillwatch/clickhouse/testing';
import { createAvroSerde, deleteScopedTopics, groupCaughtUp, provisionScopedTopics, randomId } from '@tillwatch/stream';
import { testKafka } from '@tillwatch/stream/testing';
import { createRegistry, createSinkMetrics } from '@tillwatch/telemetry';
import { createSink } from '@tillwatch/sink';

const { kafka, registry, logger } = testKafka('sink-rejected-it');
let topics: Record<TopicRole, string> | undefined;
let db: TestClickHouse | undefined;
afterAll(async () => {
  if (topics) await deleteScopedTopics(kafka, topics);
  await db?.dispose();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const T = 1_767_000_000_000;

const action = (i: number, kind: Action['kind'] = 'NOTIFY_MERCHANT'): Action => ({
  action_id: `act-${i}`, kind, target_type: kind === 'NOTIFY_ACQUIRER' ? 'ACQUIRER' : 'MERCHANT', target_id: `M${i % 3}`, merchant_id: `M${i % 3}`, terminal_id: `T${i}`,
  alert_id: `a-${i}`, rule: 'duplicate_charge', reason: `reason ${i}`, issued_at: T + i, expires_at: null,
});

const alert = (i: number, windowStart = T + i): Alert => ({
  alert_id: `a-${i}`, rule: 'sync_lag', rule_version: 1, rules_version: 0, severity: 'high', terminal_id: `T${i}`, merchant_id: `M${i % 3}`, card_token: null,
  event_ids: [`e-${i}`], window_start: windowStart, window_end: T + i, detected_at: T + i + 1000, summary: `alert ${i}`, details: { n: i },
});

describe('sink: rows ClickHouse rejects', () => {
  it('dead-letters the rejected row, writes its neighbours, and keeps the partition moving', async () => {
    topics = await provisionScopedTopics(kafka, registry, 1);
    db = await createTestClickHouse({ migrate: true });
    const ch = db.ch;
    // The test-only table variant: `actions` as a migration from before NOTIFY_ACQUIRER existed.
    await ch.client.command({
      query: `ALTER TABLE ${ch.table('actions')} MODIFY COLUMN kind Enum8('FREEZE_TERMINAL' = 1, 'FREEZE_CARD' = 2, 'HOLD_SETTLEMENT' = 3, 'REVIEW_REFUND' = 4, 'NOTIFY_MERCHANT' = 5)`,
    });

    const actionSerde = createAvroSerde<Action>(registry, valueSubject(topics.notifyActions), AvroSchemas.action);
    const alertSerde = createAvroSerde<Alert>(registry, valueSubject(topics.alerts), AvroSchemas.alert);
    await Promise.all([actionSerde.init(), alertSerde.init()]);
    const producer = kafka.producer();
    await producer.connect();
    // Offsets 0..9 on the single partition; offset 4 is the action the table cannot hold.
    const actions = Array.from({ length: 10 }, (_, i) => action(i, i === 4 ? 'NOTIFY_ACQUIRER' : 'NOTIFY_MERCHANT'));
    const actionValues = actions.map((a) => actionSerde.encode(a));
    await producer.send({ topic: topics.notifyActions, messages: actions.map((a, i) => ({ key: a.merchant_id, value: actionValues[i]! })) });
    // Offset 2 is an alert whose window starts in the year 2400 (outside DateTime64(3)).
    const alerts = Array.from({ length: 5 }, (_, i) => alert(i, i === 2 ? Date.UTC(2400, 0, 1) : T + i));
    await producer.send({ topic: topics.alerts, messages: alerts.map((a) => ({ key: a.merchant_id, value: alertSerde.encode(a) })) });
    // A poison transaction: the detector dead-letters (and counts) it; the sink only skips it.
    await producer.send({ topic: topics.transactions, messages: [{ key: 'M0', value: Buffer.from('not avro') }] });

    const promRegistry = createRegistry({ service: 'sink-test', defaultMetrics: false });
    const groupId = randomId('g-sink');
    const sink = createSink({ kafka, registry, ch, metrics: createSinkMetrics(promRegistry), logger, groupId, topics, maxRows: 1000, maxDelayMs: 200 });
    const count = async (sql: string) => {
      const rs = await ch.client.query({ query: sql, format: 'JSONEachRow' });
      return Number(((await rs.json()) as { n: number }[])[0]?.n);
    };
    const actionsWritten = () => count(`SELECT count() AS n FROM ${ch.table('actions')} FINAL`);
    const sinkDeadLetters = () => count(`SELECT count() AS n FROM ${ch.table('dead_letters')} FINAL WHERE stage = 'sink.write'`);
    const admin = kafka.admin();
    await admin.connect();
    await sink.start();
    try {
      for (let i = 0; i < 300 && ((await actionsWritten()) < 9 || (await sinkDeadLetters()) < 2); i++) await sleep(200);
      expect(await actionsWritten()).toBe(9);
      expect(await count(`SELECT count() AS n FROM ${ch.table('alerts')} FINAL`)).toBe(4);

      // Both reached the DLQ topic (the dead_letters rows come from it), once each, with their coordinates and raw bytes.
      type Row = { source_topic: string; source_partition: number; source_offset: number; error_class: string; reason: string; value_base64: string; key_base64: string };
      const rs = await ch.client.query({
        query: `SELECT source_topic, source_partition, source_offset, error_class, reason, value_base64, key_base64 FROM ${ch.table('dead_letters')} FINAL WHERE stage = 'sink.write' ORDER BY source_topic`,
        format: 'JSONEachRow',
      });
      const dead = (await rs.json()) as Row[];
      const byTopic = new Map(dead.map((d) => [d.source_topic, d]));
      const rejected = byTopic.get(topics.notifyActions);
      expect(rejected).toMatchObject({ source_partition: 0, source_offset: 4, error_class: 'ClickHouseRejected' });
      expect(rejected?.reason).toMatch(/691.*UNKNOWN_ELEMENT_OF_ENUM.*NOTIFY_ACQUIRER/s);
      expect(Buffer.from(rejected!.value_base64, 'base64').equals(actionValues[4]!)).toBe(true);
      expect(Buffer.from(rejected!.key_base64, 'base64').toString()).toBe(actions[4]!.merchant_id);
      const outOfRange = byTopic.get(topics.alerts);
      expect(outOfRange).toMatchObject({ source_partition: 0, source_offset: 2, error_class: 'ValueOutOfColumnRange' });
      expect(outOfRange?.reason).toMatch(/DateTime64/);
      const [dlqEnd] = await admin.fetchTopicOffsets(topics.dlq);
      expect(Number(dlqEnd?.high)).toBe(2); // exactly the two, and the sink did not loop on its own dead letters

      // The partition keeps moving: later records land, and the committed offset reaches the end.
      await producer.send({ topic: topics.notifyActions, messages: [10, 11, 12].map((i) => ({ key: 'M', value: actionSerde.encode(action(i)) })) });
      for (let i = 0; i < 150 && (await actionsWritten()) < 12; i++) await sleep(200);
      expect(await actionsWritten()).toBe(12);
      for (let i = 0; i < 50 && !(await groupCaughtUp(admin, groupId, topics.notifyActions)); i++) await sleep(200);
      expect(await groupCaughtUp(admin, groupId, topics.notifyActions)).toBe(true);
      expect(await groupCaughtUp(admin, groupId, topics.alerts)).toBe(true);
      for (let i = 0; i < 50 && !(await groupCaughtUp(admin, groupId, topics.transactions)); i++) await sleep(200);
      expect(await groupCaughtUp(admin, groupId, topics.transactions)).toBe(true);
    } finally {
      await sink.stop();
      await producer.disconnect();
      await admin.disconnect();
    }
    const m = await promRegistry.metrics();
    expect(m).toMatch(/tillwatch_sink_rows_dead_lettered_total\{table="actions",reason_class="UNKNOWN_ELEMENT_OF_ENUM",service="sink-test"\} 1\n/);
    expect(m).toMatch(/tillwatch_sink_rows_dead_lettered_total\{table="alerts",reason_class="VALUE_OUT_OF_COLUMN_RANGE",service="sink-test"\} 1\n/);
    expect(m).toMatch(/tillwatch_dlq_records_total\{topic="[^"]*pos\.actions\.notify\.v1",error_class="ClickHouseRejected"/);
    // Skipped, not sent: counting it here too would show every poison transaction twice on the dashboards and alerts.
    expect(m).not.toMatch(/tillwatch_dlq_records_total\{topic="[^"]*pos\.transactions\.v1"/);
  });
});
