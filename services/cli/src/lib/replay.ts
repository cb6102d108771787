// End-to-end check an operator runs: publish a JSON-lines file to Kafka, let a detector and the second
// stage process it (in this process, on run-scoped topics, unless an external pipeline is running),
// read the alerts, alert updates, refund reasons, incident memberships, governor decisions and final
// actions back from their topics (read_committed) until the streams are idle, and return them.
// compareWithBacktest runs both pure stages on the same file (as `tillwatch backtest`): live must equal
// backtest for all six.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { AvroSchemas, contractJson, defaultGroupId, valueSubject, type Action, type ActionDecision, type Alert, type AlertUpdate, type ContractName, type IncidentMembership, type RefundReason, type TopicRole } from '@tillwatch/schemas';
import { closeStreamTime, createDetector } from '@tillwatch/detector';
import { createBacktest, isRejected, type RulesConfig } from '@tillwatch/rules';
import { alertLine, createBacktestStage } from '@tillwatch/stage';
import { createStage, createStageMetrics } from '@tillwatch/stage-service';
import { createAvroSerde, deleteScopedTopics, randomId, randomTopics, sleep, waitGroupCaughtUp } from '@tillwatch/stream';
import { createDetectorMetrics, createRegistry } from '@tillwatch/telemetry';
import type { Context } from './context.js';
import { provisionKafka } from './provision.js';
import { publishFile } from '../commands/produce.js';
import { readJsonLines } from './jsonl.js';

/** An alert line of replay and backtest: the alert contract plus the fleet incident it belongs to (null: none). */
export type AlertLine = Alert & { incident_id: string | null };

export interface ReplayOptions {
  ctx: Context;
  eventsPath: string;
  rules: RulesConfig;
  /** A detector is already running on the standard topics: publish there and collect its alerts. */
  external?: boolean;
  /** Stop reading once no alert arrived for this long after the detector caught up. */
  idleMs?: number;
  timeoutMs?: number;
  keepTopics?: boolean;
  log?: (line: string) => void;
}

export interface ReplayResult {
  alerts: AlertLine[];
  updates: AlertUpdate[];
  refundReasons: RefundReason[];
  memberships: IncidentMembership[];
  decisions: ActionDecision[];
  /** The actions published on pos.actions.freeze.v1 and pos.actions.notify.v1 (the governor's final actions). */
  actions: Action[];
  published: number;
  invalid: { line: number; reason: string }[];
  topics: Record<TopicRole, string>;
  elapsedMs: number;
}


/** Alerts as JSON lines in the contract's field order plus incident_id (the backtest's format). */
export function alertJson(a: AlertLine): string {
  // Absent nullable fields as null, like the backtest writes them (schemas' contractJson).
  return alertLine(a, a.incident_id);
}

export function sortAlerts<T extends Alert>(alerts: T[]): T[] {
  return [...alerts].sort((a, b) => a.detected_at - b.detected_at || (a.alert_id < b.alert_id ? -1 : a.alert_id > b.alert_id ? 1 : 0));
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Updates by resolution time, then id (topic order differs between partitions). */
export function sortUpdates(updates: AlertUpdate[]): AlertUpdate[] {
  return [...updates].sort((a, b) => a.resolved_at - b.resolved_at || cmp(a.update_id, b.update_id));
}

/** Memberships by link time, then id; decisions by decision time, then id; actions by issue time, then id. */
export const sortMemberships = (xs: IncidentMembership[]): IncidentMembership[] => [...xs].sort((a, b) => a.joined_at - b.joined_at || cmp(a.membership_id, b.membership_id));
export const sortDecisions = (xs: ActionDecision[]): ActionDecision[] => [...xs].sort((a, b) => a.decided_at - b.decided_at || cmp(a.decision_id, b.decision_id));
export const sortActions = (xs: Action[]): Action[] => [...xs].sort((a, b) => a.issued_at - b.issued_at || cmp(a.action_id, b.action_id));

/** Joins alerts with their incident (the stage's memberships), as GET /alerts/:id and the backtest show them. */
export function withIncidents(alerts: readonly Alert[], memberships: readonly IncidentMembership[]): AlertLine[] {
  const incidentOf = new Map(memberships.map((m) => [m.alert_id, m.incident_id]));
  return alerts.map((a) => ({ ...a, incident_id: incidentOf.get(a.alert_id) ?? null }));
}

/** Refund reasons by received time, then event id. */
export function sortReasons(reasons: RefundReason[]): RefundReason[] {
  return [...reasons].sort((a, b) => a.received_time - b.received_time || cmp(a.event_id, b.event_id));
}

export async function replay(o: ReplayOptions): Promise<ReplayResult> {
  const started = Date.now();
  const log = o.log ?? (() => undefined);
  const deadline = started + (o.timeoutMs ?? 10 * 60_000);
  const runId = randomId('replay');
  const { ctx } = o;
  const topics: Record<TopicRole, string> = o.external ? ctx.topics : randomTopics(runId);
  const admin = ctx.kafka.admin();
  await admin.connect();
  const groupId = o.external ? (ctx.env.DETECTOR_GROUP_ID || defaultGroupId('detector', ctx.kafkaCfg.topicPrefix)) : `tillwatch-${runId}`;
  const stageGroup = `tillwatch-${runId}-stage`;
  let detector: ReturnType<typeof createDetector> | undefined;
  let stage: ReturnType<typeof createStage> | undefined;
  let reader: ReturnType<typeof ctx.kafka.consumer> | undefined;
  const readerGroup = `tillwatch-${runId}-reader`;
  try {
    await provisionKafka(ctx, (role) => topics[role]);
    // In external mode only alerts about this file's events count; capture where the topic ends now.
    const fileEvents = new Set<string>();
    if (o.external) for await (const l of readJsonLines(o.eventsPath)) if ('value' in l) fileEvents.add(String((l.value as { event_id?: unknown }).event_id));

    if (!o.external) {
      // Both stages, as `npm start` runs them: the detector proposes actions to the second stage on
      // the internal topic; the stage (fleet incidents, governor) is the only writer of pos.actions.*.
      detector = createDetector({
        kafka: ctx.kafka,
        registry: ctx.registry,
        rules: o.rules,
        metrics: createDetectorMetrics(createRegistry({ service: 'replay-detector', defaultMetrics: false })),
        logger: ctx.logger,
        groupId,
        topics: { ...topics, changelog: topics.detectorChangelog },
        // A replay keeps the file's time: timers run on its received times only, as in backtest.
        wallClockTimers: false,
        stage: { topic: topics.stageInput },
      });
      stage = createStage({
        kafka: ctx.kafka,
        registry: ctx.registry,
        rules: o.rules,
        metrics: createStageMetrics(createRegistry({ service: 'replay-stage', defaultMetrics: false })),
        logger: ctx.logger,
        groupId: stageGroup,
        topics: { ...topics, input: topics.stageInput, changelog: topics.stageChangelog },
      });
      await Promise.all([detector.start(), stage.start()]);
      while (!detector.ready() || !stage.ready()) {
        if (Date.now() > deadline) throw new Error('in-process detector or stage did not become ready');
        await sleep(100);
      }
      log(`detector ready on ${detector.assignedPartitions().length} partitions (group ${groupId}), second stage ready (group ${stageGroup})`);
    }
    // The output topics read back, each with its contract.
    const outputs = [
      { topic: topics.alerts, contract: 'alert' as const },
      { topic: topics.alertUpdates, contract: 'alertUpdate' as const },
      { topic: topics.refundReasons, contract: 'refundReason' as const },
      { topic: topics.incidentMembers, contract: 'incidentMembership' as const },
      { topic: topics.actionDecisions, contract: 'actionDecision' as const },
      { topic: topics.freezeActions, contract: 'action' as const },
      { topic: topics.notifyActions, contract: 'action' as const },
    ];
    const startOffsets = o.external ? new Map(await Promise.all(outputs.map(async (x) => [x.topic, await admin.fetchTopicOffsets(x.topic)] as const))) : undefined;

    const { sent, heartbeats, invalid, maxReceivedTime } = await publishFile(ctx, o.eventsPath, topics.transactions, topics.heartbeats);
    log(`published ${sent} transactions to ${topics.transactions}${heartbeats > 0 ? `, ${heartbeats} heartbeats to ${topics.heartbeats}` : ''}${invalid.length ? ` (${invalid.length} invalid lines not sent)` : ''}`);
    await waitGroupCaughtUp(admin, groupId, topics.transactions, deadline - Date.now());
    // End every partition's clock at the file's last received time, as the backtest's clock ends.
    if (!o.external && maxReceivedTime > 0) {
      await closeStreamTime(ctx.kafka, ctx.registry, topics.heartbeats, maxReceivedTime);
      await waitGroupCaughtUp(admin, groupId, topics.heartbeats, deadline - Date.now());
      // Everything the detector partitions publish is committed on the stage's input by now (same
      // transactions as their consumed offsets). End marks tell the stage that no partition publishes
      // anything more, not even at the last time: it applies what waits at that time, as the
      // backtest's end of input does (packages/stage README, "Ordering").
      await publishEndMarks(ctx, topics.transactions, topics.stageInput, maxReceivedTime);
      await waitGroupCaughtUp(admin, stageGroup, topics.stageInput, deadline - Date.now());
    }
    log('pipeline caught up; reading alerts, alert updates, refund reasons, incident memberships, decisions and actions');

    const serdes = new Map(outputs.map((x) => [x.topic, createAvroSerde<object>(ctx.registry, valueSubject(x.topic), AvroSchemas[x.contract])] as const));
    const consumer = ctx.kafka.consumer({ groupId: readerGroup, readUncommitted: false, maxWaitTimeInMs: 100 });
    const read = new Map<string, object[]>(outputs.map((x) => [x.topic, []]));
    let lastActivity = Date.now();
    reader = consumer;
    await consumer.connect();
    await consumer.subscribe({ topics: outputs.map((x) => x.topic), fromBeginning: true });
    if (startOffsets) {
      consumer.on(consumer.events.GROUP_JOIN, () => {
        for (const [topic, offsets] of startOffsets) for (const p of offsets) consumer.seek({ topic, partition: p.partition, offset: p.offset });
      });
    }
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        lastActivity = Date.now();
        const serde = serdes.get(batch.topic)!;
        await serde.prefetch(batch.messages.map((m) => m.value));
        const into = read.get(batch.topic)!;
        for (const m of batch.messages) into.push(serde.decode(m.value));
      },
    });
    // run() resolves once the group is joined: idleness counts from there, not from connect.
    lastActivity = Date.now();
    const idle = o.idleMs ?? 2000;
    while (Date.now() - lastActivity < idle) {
      if (Date.now() > deadline) throw new Error('timed out reading alerts');
      await sleep(100);
    }
    await consumer.disconnect();
    const got = <T>(topic: string): T[] => read.get(topic)! as T[];
    let alerts = got<Alert>(topics.alerts);
    let updates = got<AlertUpdate>(topics.alertUpdates);
    let refundReasons = got<RefundReason>(topics.refundReasons);
    let memberships = got<IncidentMembership>(topics.incidentMembers);
    let decisions = got<ActionDecision>(topics.actionDecisions);
    let actions = [...got<Action>(topics.freezeActions), ...got<Action>(topics.notifyActions)];
    // External mode: only this file's alerts (by evidence), their updates, links, decisions and actions.
    if (o.external) {
      alerts = alerts.filter((a) => a.event_ids.some((id) => fileEvents.has(id)));
      refundReasons = refundReasons.filter((r) => fileEvents.has(r.event_id));
      const ids = new Set(alerts.map((a) => a.alert_id));
      updates = updates.filter((u) => ids.has(u.alert_id));
      memberships = memberships.filter((m) => ids.has(m.alert_id));
      decisions = decisions.filter((d) => ids.has(d.alert_id));
      actions = actions.filter((a) => ids.has(a.alert_id));
    }
    return {
      alerts: sortAlerts(withIncidents(alerts, memberships)),
      updates: sortUpdates(updates),
      refundReasons: sortReasons(refundReasons),
      memberships: sortMemberships(memberships),
      decisions: sortDecisions(decisions),
      actions: sortActions(actions),
      published: sent + heartbeats,
      invalid,
      topics,
      elapsedMs: Date.now() - started,
    };
  } finally {
    await reader?.disconnect().catch(() => undefined);
    await detector?.stop().catch(() => undefined);
    await stage?.stop().catch(() => undefined);
    if (!o.external && !o.keepTopics) {
      // Groups first: after the topics are gone this admin's metadata refresh fails and the groups stayed.
      await admin.deleteGroups([groupId, stageGroup, readerGroup]).catch((e: unknown) => ctx.logger.warn({ err: e }, 'replay: could not delete its consumer groups'));
      await deleteScopedTopics(ctx.kafka, topics);
      for (const t of Object.values(topics)) await fetch(`${ctx.registry.url}/subjects/${encodeURIComponent(valueSubject(t))}`, { method: 'DELETE' }).catch(() => undefined);
    } else {
      await admin.deleteGroups([readerGroup]).catch(() => undefined);
    }
    await admin.disconnect();
  }
}

/** One end mark per detector partition on the stage's input topic (a watermark at `at` with `end`). */
async function publishEndMarks(ctx: Context, transactionsTopic: string, stageInput: string, at: number): Promise<void> {
  const admin = ctx.kafka.admin();
  await admin.connect();
  const meta = await admin.fetchTopicMetadata({ topics: [transactionsTopic] }).finally(() => admin.disconnect());
  const partitions = meta.topics[0]?.partitions.length ?? 0;
  const producer = ctx.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const messages = Array.from({ length: partitions }, (_, p) => ({ key: null, partition: 0, value: Buffer.from(JSON.stringify({ type: 'watermark', partition: p, time: at, end: true })) }));
    await producer.send({ topic: stageInput, acks: -1, messages });
  } finally {
    await producer.disconnect();
  }
}

export async function writeAlertsJsonl(path: string, alerts: readonly AlertLine[]): Promise<void> {
  await writeLines(path, alerts.map(alertJson));
}

/** Records as JSON lines in their contract's field order (what `tillwatch backtest` writes). */
export async function writeContractJsonl(path: string, contract: ContractName, records: readonly object[]): Promise<void> {
  await writeLines(path, records.map((r) => contractJson(contract, r)));
}

async function writeLines(path: string, lines: readonly string[]): Promise<void> {
  const out = createWriteStream(path);
  for (const l of lines) if (!out.write(`${l}\n`)) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
}

/** What both pure stages give for a file (the backtest's answer), sorted as replay sorts. */
export interface EngineAnswer {
  alerts: AlertLine[];
  updates: AlertUpdate[];
  refundReasons: RefundReason[];
  memberships: IncidentMembership[];
  decisions: ActionDecision[];
  /** The governor's final actions (what the live stage publishes on pos.actions.*). */
  actions: Action[];
}

/** Runs the backtest's engine and second stage (same rules, same validation) over the file. */
export async function backtestFile(eventsPath: string, rules: RulesConfig): Promise<EngineAnswer> {
  const bt = createBacktest(rules);
  const stage = createBacktestStage(rules, { keepDecisions: true });
  const updates: AlertUpdate[] = [];
  const refundReasons: RefundReason[] = [];
  for await (const l of readJsonLines(eventsPath)) {
    if (!('value' in l)) continue; // not published either
    const t = bt.validate(l.value, l.line, () => l.raw);
    if (isRejected(t)) continue;
    const o = bt.apply(t);
    stage.onOutput(t, o);
    if (o.updates) updates.push(...o.updates);
    if (o.refundReasons) refundReasons.push(...o.refundReasons);
  }
  stage.end();
  const taken = stage.take();
  const { decisions, actions } = stage.takeDecisions();
  return {
    alerts: sortAlerts(taken.alertLines.map((l) => JSON.parse(l) as AlertLine)),
    updates: sortUpdates([...updates, ...taken.updates]),
    refundReasons: sortReasons(refundReasons),
    memberships: sortMemberships(stage.takeMemberships()),
    decisions: sortDecisions(decisions),
    actions: sortActions(actions),
  };
}

export interface KindDiff {
  live: number;
  backtest: number;
  /** Ids only in the live run, only in the backtest, and in both with different fields (at most 5 each). */
  onlyLive: string[];
  onlyBacktest: string[];
  differ: string[];
  equal: boolean;
}

export interface OutputDiff {
  alerts: KindDiff;
  updates: KindDiff;
  refundReasons: KindDiff;
  memberships: KindDiff;
  decisions: KindDiff;
  actions: KindDiff;
  equal: boolean;
}

function diffKind<T extends object>(line: (x: T) => string, live: readonly T[], backtest: readonly T[], id: (x: T) => string): KindDiff {
  // Records are compared as their JSON line (absent nullable fields as null, as both sides write them).
  const index = (xs: readonly T[]): Map<string, string> => new Map(xs.map((x) => [id(x), line(x)]));
  const a = index(live);
  const b = index(backtest);
  const onlyLive = [...a.keys()].filter((k) => !b.has(k));
  const onlyBacktest = [...b.keys()].filter((k) => !a.has(k));
  const differ = [...a.keys()].filter((k) => b.has(k) && a.get(k) !== b.get(k));
  const equal = onlyLive.length === 0 && onlyBacktest.length === 0 && differ.length === 0 && live.length === backtest.length;
  return { live: live.length, backtest: backtest.length, onlyLive: onlyLive.slice(0, 5), onlyBacktest: onlyBacktest.slice(0, 5), differ: differ.slice(0, 5), equal };
}

const lineOf =
  (contract: ContractName) =>
  (x: object): string =>
    contractJson(contract, x);

/**
 * Live (replay) against backtest, by id and field for field: alert_id (with its incident_id), update_id,
 * the reason's event_id, membership_id, decision_id, action_id.
 */
export function compareOutputs(live: EngineAnswer, backtest: EngineAnswer): OutputDiff {
  const alerts = diffKind(alertJson, live.alerts, backtest.alerts, (a) => a.alert_id);
  const updates = diffKind(lineOf('alertUpdate'), live.updates, backtest.updates, (u) => u.update_id);
  const refundReasons = diffKind(lineOf('refundReason'), live.refundReasons, backtest.refundReasons, (r) => r.event_id);
  const memberships = diffKind(lineOf('incidentMembership'), live.memberships, backtest.memberships, (m) => m.membership_id);
  const decisions = diffKind(lineOf('actionDecision'), live.decisions, backtest.decisions, (d) => d.decision_id);
  const actions = diffKind(lineOf('action'), live.actions, backtest.actions, (a) => a.action_id);
  const kinds = [alerts, updates, refundReasons, memberships, decisions, actions];
  return { alerts, updates, refundReasons, memberships, decisions, actions, equal: kinds.every((k) => k.equal) };
}

/** One line per kind: "alerts 42 = backtest 42" or what differs. */
export function formatOutputDiff(d: OutputDiff): string {
  const line = (name: string, k: KindDiff): string => {
    if (k.equal) return `  ${name.padEnd(21)} ${k.live} = backtest ${k.backtest}`;
    const parts = [`live ${k.live}, backtest ${k.backtest}`];
    if (k.onlyLive.length) parts.push(`only live: ${k.onlyLive.join(' ')}`);
    if (k.onlyBacktest.length) parts.push(`only backtest: ${k.onlyBacktest.join(' ')}`);
    if (k.differ.length) parts.push(`different fields: ${k.differ.join(' ')}`);
    return `  ${name.padEnd(21)} DIFFERENT: ${parts.join('; ')}`;
  };
  return [
    line('alerts', d.alerts),
    line('alert updates', d.updates),
    line('refund reasons', d.refundReasons),
    line('incident memberships', d.memberships),
    line('governor decisions', d.decisions),
    line('actions', d.actions),
  ].join('\n');
}
