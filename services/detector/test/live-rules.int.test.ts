// Rules as live data and shadow mode in the detector (issue 9), on the real broker and registry.
// - a new version pushed to pos.rules.v1 while the detector processes a stream applies without a
//   restart: alerts committed before the push carry rules_version 1, those after it 2, none is lost
//   or doubled (the whole run equals the backtest, so the state was kept across the switch);
// - a bad document written straight to the topic is refused (error log, metric), version kept;
// - a rule in `mode: shadow` sends its alerts to pos.alerts.shadow.v1 only, with no action.
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { AvroSchemas, type Action, type Alert, type TopicRole } from '@tillwatch/schemas';
import { defaultRulesConfig, loadRulesConfig } from '@tillwatch/rules';
import { publishRawRulesRecord, pushRulesDocument } from '@tillwatch/rules-live';
import { randomId } from '@tillwatch/stream';
import { testKafka } from '@tillwatch/stream/testing';
import { createDetectorMetrics, createLogger, createRegistry } from '@tillwatch/telemetry';
import { createDetector, createRulesMetrics } from '@tillwatch/detector';
import { backtest, closeStreamTime, deleteTopics, duplicates, ids, produceEvents, readAll, scenario, setupTopics, sleep, waitCommitted } from './support.js';

const { kafka, registry, logger } = testKafka('detector-rules-it');
const cleanup: Record<TopicRole, string>[] = [];
afterAll(async () => {
  for (const t of cleanup) await deleteTopics(kafka, t);
});

function detector(topics: Record<TopicRole, string>, groupId: string, log = logger) {
  const metricsRegistry = createRegistry({ service: 'detector-test', defaultMetrics: false });
  const d = createDetector({
    kafka,
    registry,
    rules: defaultRulesConfig(),
    metrics: createDetectorMetrics(metricsRegistry),
    logger: log,
    groupId,
    topics: { ...topics, changelog: topics.detectorChangelog },
    wallClockTimers: false,
    tickIntervalMs: 200,
    liveRules: { topic: topics.rules, metrics: createRulesMetrics(metricsRegistry) },
  });
  return { d, metricsRegistry };
}

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000) {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const doc = (version: number, extra = '') => `version: ${version}\n${extra}`;
const push = (topic: string, version: number, extra = '') => pushRulesDocument({ kafka, registry, topic, logger }, { text: doc(version, extra), format: 'yaml', pushedBy: 'it', via: 'cli' });

describe('live rules in the detector', () => {
  it('switches to a version pushed mid-stream without a restart: before 1, after 2, none lost or doubled', async () => {
    const topics = await setupTopics(kafka, registry, 3);
    cleanup.push(topics);
    const groupId = randomId('g-rules');
    const events = scenario(4000, 21);
    const expected = backtest(events);
    await push(topics.rules, 1);

    const { d, metricsRegistry } = detector(topics, groupId);
    await d.start();
    expect(d.rulesVersion()).toBe(1);
    await until(() => d.ready(), 'ready');
    await produceEvents(kafka, registry, topics.transactions, events.slice(0, 2000));
    await waitCommitted(kafka, groupId, topics.transactions);
    const before = await readAll<Alert>(kafka, registry, topics.alerts, AvroSchemas.alert, 1000);
    expect(before.length).toBeGreaterThan(5);
    expect(new Set(before.map((a) => a.rules_version))).toEqual(new Set([1]));

    await push(topics.rules, 2);
    const publishedAt = Date.now(); // the push returns once the broker acknowledged the record
    await until(() => d.rulesVersion() === 2, 'version 2 in force');
    // Within 5 s of publication (the bound); in practice well under a second.
    expect(Date.now() - publishedAt).toBeLessThan(5000);
    // Every partition switches at its next batch boundary (a tick counts): let one tick pass.
    await sleep(600);
    await produceEvents(kafka, registry, topics.transactions, events.slice(2000));
    await waitCommitted(kafka, groupId, topics.transactions);
    await closeStreamTime(kafka, registry, topics.heartbeats, events.at(-1)!.received_time);
    await waitCommitted(kafka, groupId, topics.heartbeats);
    expect(d.ready()).toBe(true); // the same instance all along: no restart
    await d.stop();

    const all = await readAll<Alert>(kafka, registry, topics.alerts, AvroSchemas.alert);
    expect(duplicates(all)).toEqual([]);
    expect(ids(all)).toEqual(ids(expected));
    const beforeIds = new Set(before.map((a) => a.alert_id));
    const after = all.filter((a) => !beforeIds.has(a.alert_id));
    expect(after.length).toBeGreaterThan(5);
    expect(new Set(after.map((a) => a.rules_version))).toEqual(new Set([2]));
    expect(await metricsRegistry.metrics()).toMatch(/tillwatch_rules_version\S* 2\b/);
  });

  it('refuses a bad document written straight to the topic in every instance (error log, metric) and keeps the last good version', async () => {
    const topics = await setupTopics(kafka, registry, 1);
    cleanup.push(topics);
    await push(topics.rules, 4);
    const lines: string[] = [];
    const sinkStream = new Writable({ write: (chunk: Buffer, _enc, cb) => { lines.push(chunk.toString()); cb(); } });
    const log = createLogger({ service: 'detector-test', level: 'info', destination: sinkStream });
    const { d, metricsRegistry } = detector(topics, randomId('g-bad'), log);
    // A second instance of the same group: each instance reads the whole rules topic itself.
    const groupId = randomId('g-bad');
    const one = detector(topics, groupId, log);
    const two = detector(topics, groupId);
    await Promise.all([d.start(), one.d.start(), two.d.start()]);
    expect([d.rulesVersion(), one.d.rulesVersion(), two.d.rulesVersion()]).toEqual([4, 4, 4]);
    // Invalid thresholds, a version/document mismatch, a stale version, and bytes that are not a record.
    const rec = (version: number, document: string) => ({ version, format: 'yaml' as const, document, pushed_by: 'mallory', pushed_at: Date.now(), via: 'direct', comment: null });
    await publishRawRulesRecord({ kafka, registry, topic: topics.rules }, '5', rec(5, 'version: 5\nrules:\n  abnormal_amount:\n    ratio: 1\n'));
    await publishRawRulesRecord({ kafka, registry, topic: topics.rules }, '6', rec(6, 'version: 7\n'));
    await publishRawRulesRecord({ kafka, registry, topic: topics.rules }, '3', rec(3, 'version: 3\n'));
    await publishRawRulesRecord({ kafka, registry, topic: topics.rules }, 'x', Buffer.from('not avro'));
    const rejected = async (reg: typeof metricsRegistry) => {
      const m = await reg.getSingleMetricAsString('tillwatch_rules_documents_rejected_total');
      return [...m.matchAll(/reason="(\w+)"[^}]*\} (\d+)/g)].reduce((n, x) => n + Number(x[2]), 0);
    };
    for (const reg of [metricsRegistry, one.metricsRegistry, two.metricsRegistry]) await until(async () => (await rejected(reg)) === 4, '4 refusals');
    expect([d.rulesVersion(), one.d.rulesVersion(), two.d.rulesVersion()]).toEqual([4, 4, 4]);
    // d and `one` log to `lines`: each logged the four refusals.
    const errors = lines.map((l) => JSON.parse(l) as { level: number; msg: string; reason?: string }).filter((l) => l.level >= 50 && /rules document refused/.test(l.msg));
    expect(errors.map((e) => e.reason).sort()).toEqual(['invalid', 'invalid', 'invalid', 'invalid', 'stale', 'stale', 'undecodable', 'undecodable']);
    // A good version after the bad ones still applies.
    await push(topics.rules, 5, 'rules:\n  abnormal_amount:\n    ratio: 12\n');
    await until(() => d.rulesVersion() === 5 && one.d.rulesVersion() === 5 && two.d.rulesVersion() === 5, 'version 5 in force everywhere');
    await Promise.all([d.stop(), one.d.stop(), two.d.stop()]);
  });

  it('routes the alerts of a rule in mode: shadow to pos.alerts.shadow.v1, with no action and nothing on pos.alerts.v1', async () => {
    const topics = await setupTopics(kafka, registry, 2);
    cleanup.push(topics);
    const groupId = randomId('g-shadow');
    const events = scenario(3000, 5);
    const shadowDoc = 'rules:\n  sync_lag:\n    mode: shadow\n';
    await push(topics.rules, 1, shadowDoc);
    const expected = backtest(events, defaultRulesConfig());
    const expectedShadow = expected.filter((a) => a.rule === 'sync_lag');
    expect(expectedShadow.length).toBeGreaterThan(0);
    // The backtest of the shadow document raises the other rules' alerts on the main output only.
    expect(ids(backtest(events, loadRulesConfig(doc(1, shadowDoc), 'yaml')))).toEqual(ids(expected.filter((a) => a.rule !== 'sync_lag')));

    const { d } = detector(topics, groupId);
    await d.start();
    await produceEvents(kafka, registry, topics.transactions, events);
    await waitCommitted(kafka, groupId, topics.transactions);
    await closeStreamTime(kafka, registry, topics.heartbeats, events.at(-1)!.received_time);
    await waitCommitted(kafka, groupId, topics.heartbeats);
    await d.stop();

    const main = await readAll<Alert>(kafka, registry, topics.alerts, AvroSchemas.alert, 1000);
    const shadow = await readAll<Alert>(kafka, registry, topics.shadowAlerts, AvroSchemas.alert, 1000);
    const actions = [
      ...(await readAll<Action>(kafka, registry, topics.freezeActions, AvroSchemas.action, 1000)),
      ...(await readAll<Action>(kafka, registry, topics.notifyActions, AvroSchemas.action, 1000)),
    ];
    expect(ids(shadow)).toEqual(ids(expectedShadow));
    expect(main.filter((a) => a.rule === 'sync_lag')).toEqual([]);
    expect(ids(main)).toEqual(ids(expected.filter((a) => a.rule !== 'sync_lag')));
    const shadowIds = new Set(shadow.map((a) => a.alert_id));
    expect(actions.filter((a) => shadowIds.has(a.alert_id))).toEqual([]);
    expect(actions.length).toBeGreaterThan(0); // the active rules still act
  });
});
