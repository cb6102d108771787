// The second stage live, on the real broker and registry: the detector (in-process, stage mode) and
// the stage as the real CLI process (`tillwatch stage`). The fleet-outage golden scenario is fed in
// chunks; the stage is killed with SIGKILL while the outage's upload burst is being processed, then
// restarted from its changelog. Afterwards every output topic holds exactly what `tillwatch backtest`
// (both stages in-process) wrote for the same input: the same incident and circuit alerts with the
// same ids, the same updates, actions, decisions and incident memberships, none lost, none doubled.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { AvroSchemas, type Action, type ActionDecision, type Alert, type AlertUpdate, type IncidentMembership, type TopicRole, type Transaction } from '@tillwatch/schemas';
import { defaultRulesConfig } from '@tillwatch/rules';
import { createDetector } from '@tillwatch/detector';
import { randomId } from '@tillwatch/stream';
import { testKafka } from '@tillwatch/stream/testing';
import { createDetectorMetrics, createRegistry, createSinkMetrics } from '@tillwatch/telemetry';
import { createTestClickHouse } from '@tillwatch/clickhouse/testing';
import { createSink } from '@tillwatch/sink';
import { closeStreamTime, deleteTopics, produceEvents, readAll, setupTopics, sleep, waitCommitted } from '../../detector/test/support.js';

const cli = fileURLToPath(new URL('../../cli/bin/tillwatch.js', import.meta.url));
const golden = (f: string): string => fileURLToPath(new URL(`../../../packages/stage/test/scenarios/fleet_outage/${f}`, import.meta.url));
const jsonl = <T>(f: string): T[] => readFileSync(golden(f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);

const { kafka, registry, logger } = testKafka('stage-it');
const cleanup: Record<TopicRole, string>[] = [];
const children: ChildProcess[] = [];
const outputs: (() => string)[] = [];
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const t of cleanup) await deleteTopics(kafka, t);
});

function spawnStage(prefix: string, groupId: string): { child: ChildProcess; exited: Promise<number | null>; output: () => string } {
  let output = '';
  const child = spawn(process.execPath, [cli, 'stage'], { env: { ...process.env, TOPIC_PREFIX: prefix, STAGE_GROUP_ID: groupId, HTTP_PORT: '0', LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  outputs.push(() => output);
  return { child, exited, output: () => output };
}

async function committed(groupId: string, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [c] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return (c?.partitions ?? []).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
  } finally {
    await admin.disconnect();
  }
}

/** The end (high watermark) of a topic, summed over its partitions. */
async function endOffset(topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high), 0);
  } finally {
    await admin.disconnect();
  }
}

/** Offset of the last committed (read_committed) record of a one-partition topic. */
async function lastVisibleOffset(topic: string): Promise<number> {
  const consumer = kafka.consumer({ groupId: randomId('probe'), readUncommitted: false, maxWaitTimeInMs: 100 });
  let last = -1;
  let seenAt = Date.now();
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      seenAt = Date.now();
      for (const m of batch.messages) last = Math.max(last, Number(m.offset));
    },
  });
  while (Date.now() - seenAt < 2500) await sleep(100);
  await consumer.disconnect();
  return last;
}

/**
 * The stage's input is written in transactions only: its end offset counts commit markers (and
 * aborted batches) that no consumer sees, so caught up = committed past the last visible record.
 */
async function waitStageCaughtUp(groupId: string, topic: string, timeoutMs: number, output: () => string): Promise<void> {
  const target = (await lastVisibleOffset(topic)) + 1;
  const deadline = Date.now() + timeoutMs;
  while ((await committed(groupId, topic)) < target) {
    if (Date.now() > deadline) throw new Error(`the stage did not catch up (committed ${await committed(groupId, topic)}, last record ${target - 1}):\n${output()}`);
    await sleep(200);
  }
}

const sortedIds = (xs: { id: string }[]): string[] => xs.map((x) => x.id).sort();

describe('second stage, live (kill -9 during a fleet outage)', () => {
  it('loses and doubles no incident alert, update, action, decision or membership, and equals the backtest', { timeout: 240_000 }, async () => {
    const prefix = randomId('stage');
    const topics = await setupTopics(kafka, registry, 3, prefix);
    cleanup.push(topics);
    const events = jsonl<Transaction>('events.jsonl');
    const detectorGroup = randomId('g-det');
    const stageGroup = randomId('g-stage');
    const detector = createDetector({
      kafka,
      registry,
      rules: defaultRulesConfig(),
      metrics: createDetectorMetrics(createRegistry({ service: 'detector-test', defaultMetrics: false })),
      logger,
      groupId: detectorGroup,
      topics: { ...topics, changelog: topics.detectorChangelog },
      wallClockTimers: false,
      stage: { topic: topics.stageInput },
    });
    await detector.start();
    let stage = spawnStage(prefix, stageGroup);
    try {
      // The outage's upload burst starts near the middle of the stream: kill the stage in it.
      const burst = events.findIndex((e) => e.received_time - e.event_time > 15 * 60_000);
      const chunk = 150;
      let killed = false;
      for (let i = 0; i < events.length; i += chunk) {
        const killNow = !killed && i >= burst;
        // Where the stage input ends before this chunk: the detector answers the chunk with at least
        // a watermark there, so once the stage has committed past this end it has taken part of the
        // burst's output, however fast or slow it is (a baseline read after the chunk could already
        // be everything the stage will ever get from it).
        const before = killNow ? await endOffset(topics.stageInput) : 0;
        await produceEvents(kafka, registry, topics.transactions, events.slice(i, i + chunk));
        if (killNow) {
          // Wait until the stage has committed part of the burst, then kill it hard.
          await waitCommitted(kafka, detectorGroup, topics.transactions, 60_000);
          const deadline = Date.now() + 60_000;
          while ((await committed(stageGroup, topics.stageInput)) <= before) {
            if (Date.now() > deadline) throw new Error(`the stage made no progress:\n${stage.output()}`);
            await sleep(50);
          }
          stage.child.kill('SIGKILL');
          expect(await stage.exited).toBeNull();
          killed = true;
          // Keep feeding while the stage is down; restart it a little later.
          setTimeout(() => (stage = spawnStage(prefix, stageGroup)), 1500);
        }
        await sleep(100);
      }
      expect(killed).toBe(true);
      await waitCommitted(kafka, detectorGroup, topics.transactions, 120_000);
      // Every partition's clock (and so its watermark) to the end of the input, as the backtest's is.
      await closeStreamTime(kafka, registry, topics.heartbeats, events.at(-1)!.received_time + 1);
      await waitCommitted(kafka, detectorGroup, topics.heartbeats, 60_000);
      await sleep(2000);
      await waitStageCaughtUp(stageGroup, topics.stageInput, 120_000, () => outputs.map((f, i) => `--- stage process ${i + 1} ---\n${f().slice(-3000)}`).join('\n'));
    } finally {
      await detector.stop();
      stage.child.kill('SIGTERM');
      await stage.exited;
    }

    // The backtest's alert lines are the alert contract plus incident_id (joined from the memberships).
    const expectedLines = jsonl<Alert & { incident_id: string | null }>('expected.jsonl');
    const expectedAlerts: Alert[] = expectedLines.map(({ incident_id: _i, ...a }) => a);
    const expectedMembers = jsonl<IncidentMembership>('expected-memberships.jsonl');
    const expectedUpdates = jsonl<AlertUpdate>('expected-updates.jsonl');
    const governed = jsonl<Action & { decision: string }>('expected-actions.jsonl');
    const [alerts, updates, freezes, notifies, decisions, members] = await Promise.all([
      readAll<Alert>(kafka, registry, topics.alerts, AvroSchemas.alert),
      readAll<AlertUpdate>(kafka, registry, topics.alertUpdates, AvroSchemas.alertUpdate),
      readAll<Action>(kafka, registry, topics.freezeActions, AvroSchemas.action),
      readAll<Action>(kafka, registry, topics.notifyActions, AvroSchemas.action),
      readAll<ActionDecision>(kafka, registry, topics.actionDecisions, AvroSchemas.actionDecision),
      readAll<IncidentMembership>(kafka, registry, topics.incidentMembers, AvroSchemas.incidentMembership),
    ]);
    const stageRules = new Set(['sync_incident', 'freeze_circuit_open']);
    // Exactly one incident and one circuit alert, the backtest's, with its id and details.
    expect(alerts.filter((a) => stageRules.has(a.rule)).map((a) => ({ ...a, rules_version: 1 }))).toEqual(expectedAlerts.filter((a) => stageRules.has(a.rule)).map((a) => ({ ...a, rules_version: 1 })));
    expect(sortedIds(alerts.map((a) => ({ id: a.alert_id })))).toEqual(sortedIds(expectedAlerts.map((a) => ({ id: a.alert_id }))));
    expect(sortedIds(updates.map((u) => ({ id: u.update_id })))).toEqual(sortedIds(expectedUpdates.map((u) => ({ id: u.update_id }))));
    // Incident memberships: the backtest's, each once; joined with the alerts they give every alert the backtest's incident_id.
    const byMember = (xs: IncidentMembership[]) => [...xs].sort((a, b) => (a.membership_id < b.membership_id ? -1 : 1));
    expect(byMember(members)).toEqual(byMember(expectedMembers));
    const incidentOf = new Map(members.map((m) => [m.alert_id, m.incident_id]));
    expect(new Map(alerts.map((a) => [a.alert_id, incidentOf.get(a.alert_id) ?? null]))).toEqual(new Map(expectedLines.map((a) => [a.alert_id, a.incident_id])));
    // Actions: what the governor issued or downgraded, each once; nothing suppressed got out.
    const issued = governed.filter((a) => a.decision !== 'suppressed');
    expect(sortedIds([...freezes, ...notifies].map((a) => ({ id: `${a.action_id}:${a.kind}` })))).toEqual(sortedIds(issued.map((a) => ({ id: `${a.action_id}:${a.kind}` }))));
    expect(sortedIds(decisions.map((d) => ({ id: `${d.final_action_id ?? d.action_id}:${d.decision}` })))).toEqual(sortedIds(governed.map((a) => ({ id: `${a.action_id}:${a.decision}` }))));

    // Every decision through the sink into ClickHouse action_decisions (and every membership into incident_members), once each.
    const db = await createTestClickHouse({ migrate: true });
    // The golden's stream time is January 2025, older than the table's 365-day TTL on decided_at, so
    // ClickHouse would drop every row as it is written: this test checks delivery, not retention.
    await db.ch.client.command({ query: `ALTER TABLE ${db.ch.table('action_decisions')} REMOVE TTL` });
    await db.ch.client.command({ query: `ALTER TABLE ${db.ch.table('incident_members')} REMOVE TTL` });
    try {
      const sink = createSink({ kafka, registry, ch: db.ch, metrics: createSinkMetrics(createRegistry({ service: 'sink-test', defaultMetrics: false })), logger, groupId: randomId('g-sink'), topics, maxDelayMs: 200 });
      await sink.start();
      let rows: { n: string | number; u: string | number; suppressed: string | number; downgraded: string | number }[] = [];
      for (let i = 0; i < 300; i++) {
        const rs = await db.ch.client.query({ query: `SELECT count() AS n, uniqExact(decision_id) AS u, countIf(decision = 'suppressed') AS suppressed, countIf(decision = 'downgraded') AS downgraded FROM ${db.ch.table('action_decisions')} FINAL`, format: 'JSONEachRow' });
        rows = await rs.json();
        if (Number(rows[0]?.n) >= governed.length) break;
        await sleep(200);
      }
      // And every membership into incident_members, once each.
      let memberRows: { n: string | number; u: string | number }[] = [];
      for (let i = 0; i < 100; i++) {
        const rs = await db.ch.client.query({ query: `SELECT count() AS n, uniqExact(alert_id) AS u FROM ${db.ch.table('incident_members')} FINAL`, format: 'JSONEachRow' });
        memberRows = await rs.json();
        if (Number(memberRows[0]?.n) >= expectedMembers.length) break;
        await sleep(200);
      }
      await sink.stop();
      expect([Number(memberRows[0]!.n), Number(memberRows[0]!.u)]).toEqual([expectedMembers.length, expectedMembers.length]);
      expect(Number(rows[0]?.n)).toBe(governed.length);
      expect(Number(rows[0]?.u)).toBe(governed.length);
      expect(Number(rows[0]?.suppressed)).toBe(governed.filter((a) => a.decision === 'suppressed').length);
      expect(Number(rows[0]?.downgraded)).toBe(governed.filter((a) => a.decision === 'downgraded').length);
    } finally {
      await db.dispose();
    }
  });
});
