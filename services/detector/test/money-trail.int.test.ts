// Alert updates and refund reasons leave the detector in the same Kafka transaction as its alerts,
// on pos.alerts.updates.v1 and pos.refunds.reasons.v1 (registry-serialized Avro, key merchant_id).
// The rules that emit them are not written yet, so the engine is wrapped at its port: every alert
// the real engine raises is "resolved" by the next approved refund of its merchant, and every
// approved refund gets the reason `ordinary`.
import { afterAll, describe, expect, it } from 'vitest';
import { AvroSchemas, alertUpdateId, type Alert, type AlertUpdate, type RefundReason, type TopicRole, type Transaction } from '@tillwatch/schemas';
import { createRuleEngine, defaultRulesConfig, type EngineOutput, type RuleEngine } from '@tillwatch/rules';
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

/** The pure part of the fake rules: what the wrapped engine adds to one output. */
function trail(openAlerts: Map<string, Alert[]>, t: Transaction, out: EngineOutput): EngineOutput {
  for (const a of out.alerts) openAlerts.set(a.merchant_id, [...(openAlerts.get(a.merchant_id) ?? []), a]);
  if (!isReasoned(t)) return out;
  const reason: RefundReason = {
    event_id: t.event_id, txn_id: t.txn_id, original_txn_id: t.original_txn_id, kind: t.kind as RefundReason['kind'], reason: 'ordinary', merchant_id: t.merchant_id,
    terminal_id: t.terminal_id, amount_minor: t.amount_minor, currency: t.currency, event_time: t.event_time, received_time: t.received_time, alert_id: null,
  };
  const updates = (openAlerts.get(t.merchant_id) ?? []).map((a): AlertUpdate => ({
    update_id: alertUpdateId(a.alert_id, 'auto_resolved', 'refunded', [t.event_id]), alert_id: a.alert_id, rule: a.rule, rule_version: a.rule_version, terminal_id: a.terminal_id,
    merchant_id: a.merchant_id, status: 'auto_resolved', resolution: 'refunded', resolved_by_event_ids: [t.event_id], resolved_at: t.received_time, summary: 'test resolution', details: { n: 1 },
  }));
  openAlerts.delete(t.merchant_id);
  return { ...out, updates, refundReasons: [reason] };
}

function wrapped(real: RuleEngine): RuleEngine {
  const open = new Map<string, Alert[]>();
  const onTransaction = (t: Transaction) => trail(open, t, real.onTransaction(t));
  // The engine may be a class instance: delegate everything else with its own `this`.
  return new Proxy(real, {
    get: (target, prop) => {
      if (prop === 'onTransaction') return onTransaction;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** The same fake rules over the whole stream (per merchant, as the partitions keep them). */
function expected(events: Transaction[]): { updates: AlertUpdate[]; reasons: RefundReason[] } {
  const engine = wrapped(createRuleEngine(defaultRulesConfig()));
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
    const want = expected(events);
    expect(want.reasons.length).toBeGreaterThan(5);
    expect(want.updates.length).toBeGreaterThan(0);

    const groupId = randomId('g-trail');
    let fatal: Error | undefined;
    const d = createDetector({
      onFatal: (e) => (fatal = e),
      kafka, registry, rules: defaultRulesConfig(), metrics: createDetectorMetrics(createRegistry({ service: 'trail', defaultMetrics: false })), logger, groupId,
      topics: { ...topics, changelog: topics.detectorChangelog }, wallClockTimers: false, tickIntervalMs: 0, createEngine: (rules) => wrapped(createRuleEngine(rules)),
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
