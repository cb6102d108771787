// Catch-up with the two inputs written apart (issue 10): 40 minutes of transactions are in
// pos.transactions.v1 before the heartbeats of the same 40 minutes reach pos.heartbeats.v1, all
// while the detector is down; then one detector starts. kafkajs hands each topic's partition as one
// batch covering the 40 minutes. In fetch-batch order the engine clock runs ahead of the other
// topic and terminal_offline fires for terminals whose heartbeats (or transactions) are simply not
// read yet; with the inputs aligned by received time (the default) the alerts and updates equal the
// backtest of the merged lines. The second case runs the same input with alignInputs: false and
// shows the false alerts, so the first case can fail.
import { afterAll, describe, expect, it } from 'vitest';
import { AvroSchemas, type Alert, type AlertUpdate, type Heartbeat, type TopicRole, type Transaction } from '@tillwatch/schemas';
import { createRuleEngine, defaultRulesConfig, isHeartbeat } from '@tillwatch/rules';
import { randomId } from '@tillwatch/stream';
import { testKafka } from '@tillwatch/stream/testing';
import { createDetectorMetrics, createRegistry } from '@tillwatch/telemetry';
import { createDetector } from '@tillwatch/detector';
import { T0, alertDigest, closeStreamTime, deleteTopics, duplicates, produceEvents, readAll, setupTopics, sleep, waitCommitted } from './support.js';

const { kafka, registry, logger } = testKafka('detector-align-it');
const cleanup: Record<TopicRole, string>[] = [];
afterAll(async () => {
  for (const t of cleanup) await deleteTopics(kafka, t);
});

const MIN = 60_000;
const END = T0 + 41 * MIN;

/**
 * Four terminals over 40 minutes (received times distinct across both topics):
 * TA heartbeats every 60 s and transacts at minutes 3 and 25 only;
 * TC heartbeats for the first 5 minutes only and transacts every 2 minutes (its transactions keep it online);
 * TD heartbeats every 60 s but is silent from minute 15 to 29 (a real terminal_offline, closed by its heartbeat back);
 * TB transacts every 90 s and never heartbeats (never judged).
 */
function lines(): { heartbeats: Heartbeat[]; transactions: Transaction[] } {
  const transactions: Transaction[] = [];
  const seq = new Map<string, number>();
  const txn = (terminal: string, merchant: string, at: number) => {
    const s = (seq.get(terminal) ?? 100) + 1;
    seq.set(terminal, s);
    transactions.push({ event_id: `ev-${terminal}-${s}`, txn_id: `tx-${terminal}-${s}`, kind: 'SALE', status: 'APPROVED', terminal_id: terminal, merchant_id: merchant, card_token: `tok_${terminal}_${s}`, amount_minor: 1000 + s, currency: 'EUR', terminal_seq: s, original_txn_id: null, event_time: at - 1500, received_time: at });
  };
  for (const m of [3, 25]) txn('TA', 'M0', T0 + m * MIN + 30_500);
  for (let m = 0; m < 40; m += 2) txn('TC', 'M1', T0 + m * MIN + 20_500);
  for (let t = 0; t < 40 * MIN; t += 90_000) txn('TB', 'M2', T0 + t + 10_500);
  transactions.sort((a, b) => a.received_time - b.received_time);

  const heartbeats: Heartbeat[] = [];
  const lastSeq = (terminal: string, at: number) => 100 + transactions.filter((x) => x.terminal_id === terminal && x.received_time < at).length;
  const hb = (terminal: string, merchant: string, at: number) => heartbeats.push({ terminal_id: terminal, merchant_id: merchant, last_seq: lastSeq(terminal, at), queue_depth: 0, event_time: at - 200, received_time: at });
  for (let m = 0; m < 40; m++) {
    hb('TA', 'M0', T0 + m * MIN + 1000);
    if (m < 5) hb('TC', 'M1', T0 + m * MIN + 2000);
    if (m < 15 || m >= 30) hb('TD', 'M0', T0 + m * MIN + 3000);
  }
  return { heartbeats, transactions };
}

/** The backtest of the merged lines in received-time order, the clock closed at END. */
function backtest(heartbeats: Heartbeat[], transactions: Transaction[]): { alerts: Alert[]; updates: AlertUpdate[] } {
  const engine = createRuleEngine(defaultRulesConfig());
  const alerts: Alert[] = [];
  const updates: AlertUpdate[] = [];
  for (const x of [...heartbeats, ...transactions].sort((a, b) => a.received_time - b.received_time)) {
    const out = isHeartbeat(x) ? engine.onHeartbeat(x) : engine.onTransaction(x);
    alerts.push(...out.alerts);
    updates.push(...(out.updates ?? []));
  }
  const out = engine.advanceClock(END);
  alerts.push(...out.alerts);
  updates.push(...(out.updates ?? []));
  return { alerts, updates };
}

/** Writes every transaction, then every heartbeat of the same minutes, then starts one detector and runs it to the end. */
async function catchUp(alignInputs: boolean): Promise<{ alerts: Alert[]; updates: AlertUpdate[] }> {
  const topics = await setupTopics(kafka, registry, 1);
  cleanup.push(topics);
  const groupId = randomId('g-align');
  const { heartbeats, transactions } = lines();
  await produceEvents(kafka, registry, topics.transactions, transactions);
  await produceEvents(kafka, registry, topics.heartbeats, heartbeats as unknown as Transaction[], AvroSchemas.heartbeat);
  await closeStreamTime(kafka, registry, topics.heartbeats, END);

  const metricsRegistry = createRegistry({ service: 'detector-align-test', defaultMetrics: false });
  const d = createDetector({ kafka, registry, rules: defaultRulesConfig(), metrics: createDetectorMetrics(metricsRegistry), logger, groupId, topics: { ...topics, changelog: topics.detectorChangelog }, wallClockTimers: false, tickIntervalMs: 0, alignInputs });
  await d.start();
  try {
    for (let i = 0; i < 600 && !d.ready(); i++) await sleep(100);
    expect(d.ready()).toBe(true);
    await waitCommitted(kafka, groupId, topics.transactions, 60_000);
    await waitCommitted(kafka, groupId, topics.heartbeats, 60_000);
  } finally {
    await d.stop();
  }
  const alerts = await readAll<Alert>(kafka, registry, topics.alerts, AvroSchemas.alert);
  const updates = await readAll<AlertUpdate>(kafka, registry, topics.alertUpdates, AvroSchemas.alertUpdate, 1500);
  return { alerts, updates };
}

const upd = (u: AlertUpdate): string => `${u.update_id} ${u.alert_id} ${u.rule} ${u.resolution} ${u.resolved_at} ${u.resolved_by_event_ids.join(',')} ${JSON.stringify(u.details)}`;
const offline = (xs: Alert[]): string[] => xs.filter((a) => a.rule === 'terminal_offline').map((a) => a.terminal_id).sort();

describe('detector catching up on transactions written before their heartbeats', () => {
  const { heartbeats, transactions } = lines();
  const expected = backtest(heartbeats, transactions);

  it('the backtest of the merged lines has exactly the one real silence (TD)', () => {
    expect(offline(expected.alerts)).toEqual(['TD']);
  });

  it('aligned by received time (the default): alerts and updates equal the backtest', async () => {
    const { alerts, updates } = await catchUp(true);
    expect(duplicates(alerts)).toEqual([]);
    expect(alerts.map(alertDigest).sort()).toEqual(expected.alerts.map(alertDigest).sort());
    expect(updates.map(upd).sort()).toEqual(expected.updates.map(upd).sort());
  }, 120_000);

  it('in fetch-batch order (alignInputs: false) the same input gives false terminal_offline alerts', async () => {
    const { alerts } = await catchUp(false);
    expect(offline(alerts)).not.toEqual(['TD']);
    expect(offline(alerts).filter((t) => t !== 'TD').length).toBeGreaterThan(0);
  }, 120_000);
});
