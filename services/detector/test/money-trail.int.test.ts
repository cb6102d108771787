// Alert updates and refund reasons leave the detector in the same Kafka transaction as its alerts,
// on pos.alerts.updates.v1 and pos.refunds.reasons.v1 (registry-serialized Avro, key merchant_id):
// exactly what the real engine emits over the same stream (duplicate resolutions, gap fills, episode
// ends; one reason per approved refund, reversal and void).
import { afterAll, describe, expect, it } from 'vitest';
import { AvroSchemas, type Alert, type AlertUpdate, type RefundReason, type TopicRole, type Transaction } from '@tillwatch/schemas';
import { createRuleEngine, defaultRulesConfig } from '@tillwatch/rules';
import { randomId } from '@tillwatch/stream';
import { testKafka } from '@tillwatch/stream/testing';
import { createDetectorMetrics, createRegistry } from '@tillwatch/telemetry';
import { createDetector } from '@tillwatch/detector';
import { deleteTopics, produceEvents, readAll, scenario, setupTopics, sleep, waitCommitted } from './support.js';

const { kafka, registry, logger } = testKafka('detector-trail-it');
const cleanup: Record<TopicRole, string>[] = [];
afterAll(async () => {
  for (const t of cleanup) await deleteTopics(kafka, t);
});

const isReasoned = (t: Transaction) => t.status === 'APPROVED' && t.kind !== 'SALE';

/** The pure engine over the whole stream (its state is per merchant, as the partitions keep it). */
function expected(events: Transaction[]): { updates: AlertUpdate[]; reasons: RefundReason[] } {
  const engine = createRuleEngine(defaultRulesConfig());
  const updates: AlertUpdate[] = [];
  const reasons: RefundReason[] = [];
  for (const e of events) {
    const out = engine.onTransaction(e);
    updates.push(...(out.updates ?? []));
    reasons.push(...(out.refundReasons ?? []));
  }
  return { updates, reasons };
}

describe('detector: alert updates and refund reasons', () => {
  it('publishes what the engine emits, once, read_committed', async () => {
    const topics = await setupTopics(kafka, registry, 3);
    cleanup.push(topics);
    const events = scenario(3000, 5);
    // A short simulated stream ends no episode and resolves no duplicate by itself: append a
    // duplicate charge at a fresh till of one of its merchants and the reversal of its second leg.
    const last = events[events.length - 1]!;
    const txn = (n: number, kind: Transaction['kind'], orig: string | null): Transaction => ({
      ...last, event_id: `trail-${n}`, txn_id: `tx-trail-${n}`, kind, status: 'APPROVED', terminal_id: 'T-TRAIL', card_token: 'tok_trail', amount_minor: 4321, currency: 'EUR',
      terminal_seq: n, original_txn_id: orig, event_time: last.received_time + n * 1000, received_time: last.received_time + n * 1000 + 500,
    });
    events.push(txn(1, 'SALE', null), txn(2, 'SALE', null), txn(3, 'REVERSAL', 'tx-trail-2'));
    const want = expected(events);
    expect(want.reasons.length).toBeGreaterThan(5);
    expect(want.reasons.length).toBe(new Set(events.filter(isReasoned).map((t) => t.event_id)).size);
    expect(want.updates.length).toBeGreaterThan(0);

    const groupId = randomId('g-trail');
    let fatal: Error | undefined;
    const d = createDetector({
      onFatal: (e) => (fatal = e),
      kafka, registry, rules: defaultRulesConfig(), metrics: createDetectorMetrics(createRegistry({ service: 'trail', defaultMetrics: false })), logger, groupId,
      topics: { ...topics, changelog: topics.detectorChangelog }, wallClockTimers: false, tickIntervalMs: 0,
    });
    await d.start();
    for (let i = 0; i < 600 && !d.ready() && !fatal; i++) await sleep(100);
    expect(fatal).toBeUndefined();
    await produceEvents(kafka, registry, topics.transactions, events);
    await waitCommitted(kafka, groupId, topics.transactions);
    await d.stop();

    const reasons = await readAll<RefundReason>(kafka, registry, topics.refundReasons, AvroSchemas.refundReason, 1500);
    const updates = await readAll<AlertUpdate>(kafka, registry, topics.alertUpdates, AvroSchemas.alertUpdate, 1500);
    const byId = <T>(xs: T[], id: (x: T) => string) => [...xs].sort((a, b) => (id(a) < id(b) ? -1 : 1));
    expect(byId(reasons, (r) => r.event_id)).toEqual(byId(want.reasons, (r) => r.event_id));
    expect(byId(updates, (u) => u.update_id)).toEqual(byId(want.updates, (u) => u.update_id));
    // Every update's alert is on the alert topic (published in the same or an earlier transaction).
    const alerts = new Set((await readAll<Alert>(kafka, registry, topics.alerts, AvroSchemas.alert, 1500)).map((a) => a.alert_id));
    for (const u of updates) expect(alerts.has(u.alert_id)).toBe(true);
  });
});
