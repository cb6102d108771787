// Rules as live data and shadow mode in the detector (issue 9), on the real broker and registry.
// - a new version pushed to pos.rules.v1 while the detector processes a stream (records still
//   arriving, some but not all committed) applies within 5 s without a restart: in each partition
//   the alerts carry rules_version 1 up to one batch and 2 from the next on, never both in one
//   batch, none is lost or doubled (the whole run equals the backtest, so the state was kept);
//   the same atomicity within one batch split into several process() calls: rules-switch.test.ts;
// - a bad document written straight to the topic is refused (error log, metric), version kept;
// - a rule in `mode: shadow` sends its alerts to pos.alerts.shadow.v1 only, with no action.
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { AvroSchemas, type Action, type Alert, type DeadLetter, type TopicRole, type Transaction } from '@tillwatch/schemas';
import { defaultRulesConfig, loadRulesConfig } from '@tillwatch/rules';
import { publishRawRulesRecord, pushRulesDocument } from '@tillwatch/rules-live';
import { randomId } from '@tillwatch/stream';
import { testKafka } from '@tillwatch/stream/testing';
import { createDetectorMetrics, createLogger, createRegistry } from '@tillwatch/telemetry';
import { createDetector, createRulesMetrics } from '@tillwatch/detector';
import { backtest, closeStreamTime, deleteTopics, duplicates, ids, openEventProducer, produceEvents, readAll, readAllRecords, scenario, setupTopics, sleep, waitCommitted, type ReadRecord } from './support.js';

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
  it('switches to a version pushed while the detector processes a stream, without a restart: per partition 1 then 2 at a batch boundary, none lost or doubled', async () => {
    const topics = await setupTopics(kafka, registry, 3);
    cleanup.push(topics);
    const groupId = randomId('g-rules');
    const events = scenario(12_000, 21);
    // Versions 1 and 2 hold the same rules: the alert ids (rule, rule version, evidence) do not
    // depend on the document's version, so the whole run must equal the backtest alert for alert,
    // whichever version each alert was raised under; only rules_version differs.
    const expected = backtest(events, loadRulesConfig(doc(1), 'yaml'));
    const expectedV2 = backtest(events, loadRulesConfig(doc(2), 'yaml'));
    expect(new Set(expected.map((a) => a.rules_version))).toEqual(new Set([1]));
    expect(new Set(expectedV2.map((a) => a.rules_version))).toEqual(new Set([2]));
    expect(expectedV2.map((a) => ({ ...a, rules_version: 1 }))).toEqual(expected);
    await push(topics.rules, 1);

    const lines: string[] = [];
    const log = createLogger({ service: 'detector-test', level: 'info', destination: new Writable({ write: (chunk: Buffer, _enc, cb) => { lines.push(chunk.toString()); cb(); } }) });
    const { d, metricsRegistry } = detector(topics, groupId, log);
    const admin = kafka.admin();
    let running = true;
    // A failed assertion must not leave the detector (or the admin client) running.
    onTestFinished(async () => {
      if (running) await d.stop();
      await admin.disconnect();
    });
    await d.start();
    expect(d.rulesVersion()).toBe(1);
    await until(() => d.ready(), 'ready');
    await admin.connect();
    // Input records whose effects are committed (the sum of the committed offsets: the input topic
    // is written without transactions, so one offset = one record).
    const committedInputs = async () => {
      const [c] = await admin.fetchOffsets({ groupId, topics: [topics.transactions] });
      return (c?.partitions ?? []).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
    };

    // The stream arrives in small chunks, continuously, while the detector processes it: at most
    // WINDOW records ahead of what the detector committed (so the push below lands while records
    // are still arriving, however slow the machine), and the last TAIL records only after the push
    // returned (so not everything can be committed at the push, whatever the timing).
    const CHUNK = 300;
    const WINDOW = 3000;
    const TAIL = 2000;
    let produced = 0;
    let releaseTail!: () => void;
    const tailReleased = new Promise<void>((r) => (releaseTail = r));
    const producer = await openEventProducer(kafka, registry, topics.transactions);
    const producing = (async () => {
      try {
        for (let i = 0; i < events.length; i += CHUNK) {
          if (i >= events.length - TAIL) await tailReleased;
          while (i - (await committedInputs()) >= WINDOW) await sleep(20);
          await producer.send(events.slice(i, i + CHUNK));
          produced = Math.min(events.length, i + CHUNK);
          await sleep(20);
        }
      } finally {
        await producer.close();
      }
    })();
    producing.catch(() => undefined); // awaited below; a failure must not wait for that as an unhandled rejection

    let at: { committedBefore: number; committedAfter: number; producedBefore: number; producedAfter: number; pushedAt: number };
    try {
      // Part-way through: a good share of the stream processed (so version 1 raised some alerts).
      await until(async () => (await committedInputs()) >= 4000, '4000 input records committed', 60_000);
      const committedBefore = await committedInputs();
      const producedBefore = produced;
      const res = await push(topics.rules, 2);
      at = { committedBefore, committedAfter: await committedInputs(), producedBefore, producedAfter: produced, pushedAt: res.record.pushed_at };
    } finally {
      releaseTail();
    }
    // At the moment of the push the detector had committed some but not all of the input, and
    // records kept arriving after it (committed offsets only grow: committedBefore..committedAfter
    // brackets the moment the record reached the broker).
    const atPush = JSON.stringify(at);
    expect(at.committedBefore, atPush).toBeGreaterThan(0);
    expect(at.committedAfter, atPush).toBeLessThan(events.length);
    expect(at.producedAfter, atPush).toBeLessThanOrEqual(events.length - TAIL);

    // Every partition switches at its next batch boundary (a tick counts), and logs it.
    const switches = () =>
      lines
        .map((l) => JSON.parse(l) as { time: number; msg: string; partition?: number; version?: number })
        .filter((l) => l.msg === 'partition switched rules version');
    await until(() => d.rulesVersion() === 2 && switches().length >= 3, 'version 2 in force on every partition', 30_000);
    await producing;
    await waitCommitted(kafka, groupId, topics.transactions);
    await closeStreamTime(kafka, registry, topics.heartbeats, events.at(-1)!.received_time);
    await waitCommitted(kafka, groupId, topics.heartbeats);
    // (d) The same instance all along, no restart, no rebalance: one group join, ready throughout.
    expect(d.ready()).toBe(true);
    const joins = (await metricsRegistry.getSingleMetric('tillwatch_consumer_group_joins_total')?.get())?.values.map((v) => [v.labels.kind, v.value]);
    const metrics = await metricsRegistry.metrics();
    running = false;
    await d.stop();
    expect(joins).toEqual([['first', 1]]);
    // (e) The gauge reads the version in force.
    expect(metrics).toMatch(/tillwatch_rules_version\S* 2\b/);
    // (c) Each partition switched once, to version 2, within 5 s of publication (the bound;
    // pushed_at is stamped before the record is sent, so this errs on the strict side).
    const sw = switches();
    expect(sw.map((l) => [l.partition, l.version]).sort()).toEqual([[0, 2], [1, 2], [2, 2]]);
    for (const l of sw) expect(l.time - at.pushedAt).toBeLessThan(5000);

    // (a) None lost or doubled: the run equals the backtest of the whole stream, alert for alert.
    const records = await readAllRecords<Alert>(kafka, registry, topics.alerts, AvroSchemas.alert);
    const all = records.map((r) => r.value);
    expect(duplicates(all)).toEqual([]);
    expect(ids(all)).toEqual(ids(expected));
    const byId = new Map(expected.map((a) => [a.alert_id, a]));
    for (const a of all) expect({ ...a, rules_version: 1 }).toEqual(byId.get(a.alert_id));

    // (b) Before the switch 1, after it 2, per partition. The detector is co-partitioned: inputs
    // and alerts are keyed by merchant_id with the same (murmur2) partitioner and the same partition
    // count, so the alerts of input partition p all go to alerts partition p, written only by task
    // p's transactional producer, one Kafka transaction per batch. Checked here rather than assumed:
    const inputs = await readAllRecords<Transaction>(kafka, registry, topics.transactions, AvroSchemas.transaction, 1000);
    const merchantPartition = new Map<string, number>();
    for (const r of inputs) {
      expect(merchantPartition.get(r.value.merchant_id) ?? r.partition).toBe(r.partition);
      merchantPartition.set(r.value.merchant_id, r.partition);
    }
    for (const r of records) expect(merchantPartition.get(r.value.merchant_id)).toBe(r.partition);
    // So an alerts partition read in offset order is task p's batches in processing order: its
    // versions never go back from 2 to 1. Within a partition, records of one transaction have
    // consecutive offsets and a commit marker takes the next offset, so a gap in the offsets marks a
    // transaction boundary: every transaction (= batch) carries one version (the switch is atomic).
    const byPartition = new Map<number, ReadRecord<Alert>[]>();
    for (const r of records) byPartition.set(r.partition, [...(byPartition.get(r.partition) ?? []), r]);
    const counts: Record<number, number> = {};
    const mixedBatches: string[] = [];
    for (const [partition, rs] of byPartition) {
      rs.sort((x, y) => (x.offset < y.offset ? -1 : x.offset > y.offset ? 1 : 0));
      const versions = rs.map((r) => r.value.rules_version);
      const firstV2 = versions.indexOf(2);
      expect(firstV2 < 0 ? [] : versions.slice(firstV2).filter((v) => v !== 2), `partition ${partition}: ${versions.join('')}`).toEqual([]);
      for (const v of versions) counts[v] = (counts[v] ?? 0) + 1;
      for (let i = 1; i < rs.length; i++) if (rs[i]!.offset === rs[i - 1]!.offset + 1n && versions[i] !== versions[i - 1]) mixedBatches.push(`partition ${partition} offsets ${rs[i - 1]!.offset}-${rs[i]!.offset}`);
    }
    expect(mixedBatches).toEqual([]);
    expect(Object.keys(counts).sort()).toEqual(['1', '2']);
    expect(counts[1]).toBeGreaterThanOrEqual(5);
    expect(counts[2]).toBeGreaterThanOrEqual(5);
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

  it("applies a pushed version's engine.max_clock_skew to the input checks, without a restart", async () => {
    const topics = await setupTopics(kafka, registry, 1);
    cleanup.push(topics);
    const groupId = randomId('g-skew');
    await push(topics.rules, 1);
    const { d } = detector(topics, groupId);
    onTestFinished(() => d.stop());
    await d.start();
    const producer = await openEventProducer(kafka, registry, topics.transactions);
    onTestFinished(() => producer.close());
    // Ten minutes in the future of their arrival: inside the default bound (1 h), outside 5 min.
    const base = scenario(4, 3);
    const ahead = (t: Transaction, i: number): Transaction => ({ ...t, txn_id: `${t.txn_id}-skew${i}`, event_time: t.received_time + 10 * 60_000 });
    await producer.send([ahead(base[0]!, 0), ahead(base[1]!, 1)]);
    await waitCommitted(kafka, groupId, topics.transactions);
    // Nothing was ever written to the DLQ (its end offset; a reader's idle timeout could miss a late record).
    const admin = kafka.admin();
    await admin.connect();
    onTestFinished(() => admin.disconnect());
    expect((await admin.fetchTopicOffsets(topics.dlq)).map((p) => p.high)).toEqual(['0']);
    await push(topics.rules, 2, 'engine:\n  max_clock_skew: 5m\n');
    await until(() => d.rulesVersion() === 2, 'version 2 in force');
    await producer.send([ahead(base[2]!, 2), ahead(base[3]!, 3)]);
    await waitCommitted(kafka, groupId, topics.transactions);
    // Committed with the offsets above: read until both are there (bounded), then exactly these two.
    let dead: DeadLetter[] = [];
    for (const deadline = Date.now() + 30_000; dead.length < 2 && Date.now() < deadline; ) dead = await readAll<DeadLetter>(kafka, registry, topics.dlq, AvroSchemas.deadLetter, 1000);
    expect(dead.map((x) => [x.error_class, x.stage])).toEqual([['ClockSkew', 'detector.validate'], ['ClockSkew', 'detector.validate']]);
    expect(dead.every((x) => /max clock skew 5 min/.test(x.reason))).toBe(true);
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
