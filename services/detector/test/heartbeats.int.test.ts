// Heartbeats on the real broker and registry: pos.heartbeats.v1 goes through the same per-partition
// engine and the same Kafka transaction as the transactions of its merchants (co-partitioned by
// merchant_id), terminal_offline and upload_backlog alerts and their updates equal the backtest's,
// and poison heartbeats go to the DLQ like poison transactions.
import { afterAll, describe, expect, it } from 'vitest';
import { AvroSchemas, valueSubject, type Alert, type AlertUpdate, type DeadLetter, type Heartbeat, type TopicRole, type Transaction } from '@tillwatch/schemas';
import { createRuleEngine, defaultRulesConfig, isHeartbeat } from '@tillwatch/rules';
import { createAvroSerde, randomId } from '@tillwatch/stream';
import { testKafka } from '@tillwatch/stream/testing';
import { createDetectorMetrics, createRegistry } from '@tillwatch/telemetry';
import { createDetector } from '@tillwatch/detector';
import { T0, alertDigest, closeStreamTime, deleteTopics, duplicates, produceEvents, readAll, setupTopics, sleep, waitCommitted } from './support.js';

const { kafka, registry, logger } = testKafka('detector-hb-it');
const cleanup: Record<TopicRole, string>[] = [];
afterAll(async () => {
  for (const t of cleanup) await deleteTopics(kafka, t);
});

const MIN = 60_000;

/**
 * 24 terminals of 8 merchants heartbeat every 60 s for 60 min. Every 4th goes silent from 20 to
 * 40 min (terminal_offline, closed by its heartbeat back); every 4th+1 reports a queue of 8 from 10 to
 * 30 min (upload_backlog, closed when it drains); every 4th+2 goes silent at 45 min for good and comes
 * back with a transaction after all heartbeats (closed by that transaction: the engine of the
 * partition sees both topics). Received times strictly increasing.
 */
function fleet(): { heartbeats: Heartbeat[]; transactions: Transaction[] } {
  const heartbeats: Heartbeat[] = [];
  for (let m = 0; m < 60; m++) {
    for (let i = 0; i < 24; i++) {
      const at = T0 + m * MIN + i * 1000;
      if (i % 4 === 0 && m >= 20 && m < 40) continue;
      if (i % 4 === 2 && m >= 45) continue;
      const queue = i % 4 === 1 && m >= 10 && m < 30 ? 8 : 0;
      heartbeats.push({ terminal_id: `T${i}`, merchant_id: `M${i % 8}`, last_seq: 100 + queue, queue_depth: queue, event_time: at - 200, received_time: at });
    }
  }
  const transactions: Transaction[] = [];
  for (let i = 2; i < 24; i += 4) {
    const at = T0 + 62 * MIN + i * 1000;
    transactions.push({ event_id: `ev-back-${i}`, txn_id: `tx-back-${i}`, kind: 'SALE', status: 'APPROVED', terminal_id: `T${i}`, merchant_id: `M${i % 8}`, card_token: `tok_${i}`, amount_minor: 1000, currency: 'EUR', terminal_seq: 101, original_txn_id: null, event_time: at - 1500, received_time: at });
  }
  return { heartbeats, transactions };
}

describe('detector with heartbeats on the real stack', () => {
  it('terminal_offline and upload_backlog alerts and updates equal the backtest of the same lines; poison heartbeats to the DLQ', async () => {
    const topics = await setupTopics(kafka, registry, 3);
    cleanup.push(topics);
    const groupId = randomId('g-hb');
    const { heartbeats, transactions } = fleet();
    // The backtest of the same input in arrival order (every heartbeat before every transaction here).
    const engine = createRuleEngine(defaultRulesConfig());
    const expectedAlerts: Alert[] = [];
    const expectedUpdates: AlertUpdate[] = [];
    for (const x of [...heartbeats, ...transactions]) {
      const out = isHeartbeat(x) ? engine.onHeartbeat(x) : engine.onTransaction(x);
      expectedAlerts.push(...out.alerts);
      expectedUpdates.push(...(out.updates ?? []));
    }
    const end = transactions.at(-1)!.received_time;
    expectedAlerts.push(...engine.advanceClock(end).alerts);
    const rules = (xs: { rule: string }[]): Record<string, number> => xs.reduce<Record<string, number>>((o, a) => ({ ...o, [a.rule]: (o[a.rule] ?? 0) + 1 }), {});
    expect(rules(expectedAlerts)).toEqual({ terminal_offline: 12, upload_backlog: 6 });
    expect(rules(expectedUpdates)).toEqual({ terminal_offline: 12, upload_backlog: 6 });

    const metricsRegistry = createRegistry({ service: 'detector-hb-test', defaultMetrics: false });
    const d = createDetector({ kafka, registry, rules: defaultRulesConfig(), metrics: createDetectorMetrics(metricsRegistry), logger, groupId, topics: { ...topics, changelog: topics.detectorChangelog }, wallClockTimers: false, tickIntervalMs: 0 });
    await d.start();
    for (let i = 0; i < 600 && !d.ready(); i++) await sleep(100);
    expect(d.ready()).toBe(true);

    // Poison heartbeats among the good ones: bytes that are no record, and a record breaking the contract.
    const serde = createAvroSerde<Heartbeat>(registry, valueSubject(topics.heartbeats), AvroSchemas.heartbeat);
    await serde.init();
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: topics.heartbeats,
      messages: [
        { key: 'M0', value: Buffer.from('not avro at all') },
        { key: 'M0', value: serde.encode({ ...heartbeats[0]!, queue_depth: -3, event_time: Date.UTC(3000, 0, 1) }) },
      ],
    });
    await producer.disconnect();
    await produceEvents(kafka, registry, topics.heartbeats, heartbeats as unknown as Transaction[], AvroSchemas.heartbeat);
    await waitCommitted(kafka, groupId, topics.heartbeats);
    // The transactions arrive after every heartbeat (cross-topic order is not defined within a batch).
    await produceEvents(kafka, registry, topics.transactions, transactions);
    await waitCommitted(kafka, groupId, topics.transactions);
    await closeStreamTime(kafka, registry, topics.heartbeats, end);
    await waitCommitted(kafka, groupId, topics.heartbeats);
    await d.stop();

    const alerts = await readAll<Alert>(kafka, registry, topics.alerts, AvroSchemas.alert);
    expect(duplicates(alerts)).toEqual([]);
    expect(alerts.map(alertDigest).sort()).toEqual(expectedAlerts.map(alertDigest).sort());
    const updates = await readAll<AlertUpdate>(kafka, registry, topics.alertUpdates, AvroSchemas.alertUpdate, 1500);
    const upd = (u: AlertUpdate): string => `${u.update_id} ${u.alert_id} ${u.rule} ${u.resolution} ${u.resolved_at} ${u.resolved_by_event_ids.join(',')} ${JSON.stringify(u.details)}`;
    expect(updates.map(upd).sort()).toEqual(expectedUpdates.map(upd).sort());
    // The terminals that came back with a transaction: closed by it.
    expect(updates.filter((u) => u.resolved_by_event_ids[0]?.startsWith('ev-back-')).length).toBe(6);

    const dead = await readAll<DeadLetter>(kafka, registry, topics.dlq, AvroSchemas.deadLetter, 1500);
    expect(dead.map((x) => [x.source_topic, x.error_class, x.stage]).sort()).toEqual([
      [topics.heartbeats, 'InvalidValue', 'detector.validate'],
      [topics.heartbeats, 'UndecodableRecord', 'detector.decode'],
    ]);
    expect(dead.find((x) => x.error_class === 'InvalidValue')!.reason).toMatch(/queue_depth.*event_time/);
  }, 180_000);
});
