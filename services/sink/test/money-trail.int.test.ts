// The sink writes the money-trail topics (alert updates, refund reasons) into ClickHouse once,
// even when the topics are replayed from the beginning by a new consumer group; a row its column
// cannot hold goes to the DLQ, as for the other tables. Real broker, registry and embedded ClickHouse.
import { afterAll, describe, expect, it } from 'vitest';
import { AvroSchemas, alertUpdateId, valueSubject, type Alert, type AlertUpdate, type RefundReason, type TopicRole } from '@tillwatch/schemas';
import { createTestClickHouse, type TestClickHouse } from '@tillwatch/clickhouse/testing';
import { createAvroSerde, deleteScopedTopics, provisionScopedTopics, randomId } from '@tillwatch/stream';
import { testKafka } from '@tillwatch/stream/testing';
import { createRegistry, createSinkMetrics } from '@tillwatch/telemetry';
import { createSink } from '@tillwatch/sink';

const { kafka, registry, logger } = testKafka('sink-trail-it');
let topics: Record<TopicRole, string> | undefined;
let db: TestClickHouse | undefined;
afterAll(async () => {
  if (topics) await deleteScopedTopics(kafka, topics);
  await db?.dispose();
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const T = Date.UTC(2026, 0, 5, 9);

const update = (i: number): AlertUpdate => ({
  update_id: alertUpdateId(`a-${i}`, 'auto_resolved', i % 2 ? 'refunded' : 'episode_ended', [`e-${i}`]), alert_id: `a-${i}`, rule: i % 2 ? 'duplicate_charge' : 'sync_lag', rule_version: 1,
  terminal_id: `T${i % 4}`, merchant_id: `M${i % 3}`, status: 'auto_resolved', resolution: i % 2 ? 'refunded' : 'episode_ended', resolved_by_event_ids: i % 2 ? [`e-${i}`] : [],
  resolved_at: T + i * 1000, summary: `update ${i}`, details: { duration_ms: i },
});
const reason = (i: number): RefundReason => ({
  event_id: `r-${i}`, txn_id: `tx-${i}`, original_txn_id: i % 5 ? `sale-${i}` : null, kind: (['REFUND', 'REVERSAL', 'VOID'] as const)[i % 3]!, reason: (['no_sale', 'duplicate_charge', 'sync_failure', 'policy', 'ordinary'] as const)[i % 5]!,
  merchant_id: `M${i % 3}`, terminal_id: `T${i % 4}`, amount_minor: 100 * i, currency: i % 2 ? 'EUR' : 'JPY', event_time: T + i * 500, received_time: T + i * 500 + 10, alert_id: null,
});

describe('sink: money trail', () => {
  it('writes alert updates and refund reasons once, replays included; a row out of column range goes to the DLQ', async () => {
    topics = await provisionScopedTopics(kafka, registry, 2);
    db = await createTestClickHouse({ migrate: true });
    const ch = db.ch;
    const upd = createAvroSerde<AlertUpdate>(registry, valueSubject(topics.alertUpdates), AvroSchemas.alertUpdate);
    const rsn = createAvroSerde<RefundReason>(registry, valueSubject(topics.refundReasons), AvroSchemas.refundReason);
    const alt = createAvroSerde<Alert>(registry, valueSubject(topics.alerts), AvroSchemas.alert);
    await Promise.all([upd.init(), rsn.init(), alt.init()]);
    const producer = kafka.producer();
    await producer.connect();
    const N = 200;
    const updates = Array.from({ length: N }, (_, i) => update(i));
    const reasons = Array.from({ length: N }, (_, i) => reason(i));
    // Each record twice on the topic (a detector that re-processed a batch), plus one poison-by-range reason.
    const bad = { ...reason(N), event_id: 'r-bad', event_time: Date.UTC(2400, 0, 1) };
    await producer.send({ topic: topics.alertUpdates, messages: [...updates, ...updates.slice(0, 50)].map((u) => ({ key: u.merchant_id, value: upd.encode(u) })) });
    await producer.send({ topic: topics.refundReasons, messages: [...reasons, bad, ...reasons.slice(0, 50)].map((r) => ({ key: r.merchant_id, value: rsn.encode(r) })) });
    const money: Alert = { alert_id: 'money-1', rule: 'duplicate_charge', rule_version: 1, rules_version: 1, severity: 'high', terminal_id: 'T1', merchant_id: 'M1', card_token: 'tok', event_ids: ['e1', 'e2'],
      window_start: T, window_end: T + 1000, detected_at: T + 2000, summary: 's', details: { amount_minor: 2500 }, currency: 'EUR', amount_minor: 2500 };
    await producer.send({ topic: topics.alerts, messages: [{ key: money.merchant_id, value: alt.encode(money) }] });
    await producer.disconnect();

    const q = async (sql: string) => ((await (await ch.client.query({ query: sql, format: 'JSONEachRow' })).json()) as Record<string, string | number>[]);
    const counts = async () => {
      const [u] = await q(`SELECT count() AS n FROM ${ch.table('alert_updates')} FINAL`);
      const [r] = await q(`SELECT count() AS n FROM ${ch.table('refund_reasons')} FINAL`);
      return { u: Number(u!.n), r: Number(r!.n) };
    };
    const run = async (groupId: string) => {
      const sink = createSink({ kafka, registry, ch, metrics: createSinkMetrics(createRegistry({ service: groupId, defaultMetrics: false })), logger, groupId, topics: topics!, maxRows: 100, maxDelayMs: 200 });
      await sink.start();
      for (let i = 0; i < 200; i++) {
        const c = await counts();
        if (c.u >= N && c.r >= N && sink.pending() === 0) break;
        await sleep(200);
      }
      await sleep(500);
      await sink.stop();
    };
    await run(randomId('g-trail-1'));
    // A new group replays both topics from the beginning: still one row per id.
    await run(randomId('g-trail-2'));
    expect(await counts()).toEqual({ u: N, r: N });
    const [distinct] = await q(`SELECT uniqExact(update_id) AS u, countIf(resolution = 'episode_ended') AS ep FROM ${ch.table('alert_updates')} FINAL`);
    expect(Number(distinct!.u)).toBe(N);
    expect(Number(distinct!.ep)).toBe(N / 2);
    const [sum] = await q(`SELECT sumIf(amount_minor, currency = 'EUR') AS eur, countIf(reason = 'sync_failure') AS sf FROM ${ch.table('refund_reasons')} FINAL`);
    expect(Number(sum!.eur)).toBe(reasons.filter((r) => r.currency === 'EUR').reduce((s, r) => s + r.amount_minor, 0));
    expect(Number(sum!.sf)).toBe(N / 5);
    const [m] = await q(`SELECT currency, amount_minor FROM ${ch.table('alerts')} FINAL WHERE alert_id = 'money-1'`);
    expect(m).toEqual({ currency: 'EUR', amount_minor: 2500 });
    const dead = await q(`SELECT source_topic, error_class FROM ${ch.table('dead_letters')} FINAL`);
    expect(dead).toEqual([{ source_topic: topics.refundReasons, error_class: 'ValueOutOfColumnRange' }]);
  });
});
