// End-to-end check an operator runs: publish a JSON-lines file to Kafka, let a detector process
// it (in this process, on run-scoped topics, unless an external one is running), read the alerts,
// alert updates and refund reasons back from their topics (read_committed) until the streams are
// idle, and return them. compareWithBacktest runs the pure engine on the same file: live must equal
// backtest for all three.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { AvroSchemas, contractJson, valueSubject, type Alert, type AlertUpdate, type ContractName, type RefundReason, type TopicRole } from '@tillwatch/schemas';
import { closeStreamTime, createDetector } from '@tillwatch/detector';
import { createBacktest, isRejected, type RulesConfig } from '@tillwatch/rules';

import { createAvroSerde, deleteScopedTopics, randomId, randomTopics, sleep, waitGroupCaughtUp } from '@tillwatch/stream';
import { createDetectorMetrics, createRegistry } from '@tillwatch/telemetry';
import type { Context } from './context.js';
import { provisionKafka } from './provision.js';
import { publishFile } from '../commands/produce.js';
import { readJsonLines } from './jsonl.js';

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
  alerts: Alert[];
  updates: AlertUpdate[];
  refundReasons: RefundReason[];
  published: number;
  invalid: { line: number; reason: string }[];
  topics: Record<TopicRole, string>;
  elapsedMs: number;
}


/** Alerts as JSON lines in the contract's field order (the backtest's format). */
export function alertJson(a: Alert): string {
  // Absent nullable fields as null, like the backtest writes them (schemas' contractJson).
  return contractJson('alert', a);
}

export function sortAlerts(alerts: Alert[]): Alert[] {
  return [...alerts].sort((a, b) => a.detected_at - b.detected_at || (a.alert_id < b.alert_id ? -1 : a.alert_id > b.alert_id ? 1 : 0));
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Updates by resolution time, then id (topic order differs between partitions). */
export function sortUpdates(updates: AlertUpdate[]): AlertUpdate[] {
  return [...updates].sort((a, b) => a.resolved_at - b.resolved_at || cmp(a.update_id, b.update_id));
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
  const groupId = o.external ? (ctx.env.DETECTOR_GROUP_ID || 'tillwatch-detector') : `tillwatch-${runId}`;
  let detector: ReturnType<typeof createDetector> | undefined;
  let reader: ReturnType<typeof ctx.kafka.consumer> | undefined;
  const readerGroup = `tillwatch-${runId}-reader`;
  try {
    await provisionKafka(ctx, (role) => topics[role]);
    // In external mode only alerts about this file's events count; capture where the topic ends now.
    const fileEvents = new Set<string>();
    if (o.external) for await (const l of readJsonLines(o.eventsPath)) if ('value' in l) fileEvents.add(String((l.value as { event_id?: unknown }).event_id));

    if (!o.external) {
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
      });
      await detector.start();
      while (!detector.ready()) {
        if (Date.now() > deadline) throw new Error('in-process detector did not become ready');
        await sleep(100);
      }
      log(`detector ready on ${detector.assignedPartitions().length} partitions (group ${groupId})`);
    }
    // The three output topics read back, each with its contract and record id.
    const outputs = [
      { topic: topics.alerts, contract: 'alert' as const },
      { topic: topics.alertUpdates, contract: 'alertUpdate' as const },
      { topic: topics.refundReasons, contract: 'refundReason' as const },
    ];
    const startOffsets = o.external ? new Map(await Promise.all(outputs.map(async (x) => [x.topic, await admin.fetchTopicOffsets(x.topic)] as const))) : undefined;

    const { sent, invalid, maxReceivedTime } = await publishFile(ctx, o.eventsPath, topics.transactions, topics.heartbeats);
    log(`published ${sent} events to ${topics.transactions}${invalid.length ? ` (${invalid.length} invalid lines not sent)` : ''}`);
    await waitGroupCaughtUp(admin, groupId, topics.transactions, deadline - Date.now());
    // End every partition's clock at the file's last received time, as the backtest's clock ends.
    if (!o.external && maxReceivedTime > 0) {
      await closeStreamTime(ctx.kafka, ctx.registry, topics.heartbeats, maxReceivedTime);
      await waitGroupCaughtUp(admin, groupId, topics.heartbeats, deadline - Date.now());
    }
    log('detector caught up; reading alerts, alert updates and refund reasons');

    const serdes = new Map(outputs.map((x) => [x.topic, createAvroSerde<object>(ctx.registry, valueSubject(x.topic), AvroSchemas[x.contract])] as const));
    const consumer = ctx.kafka.consumer({ groupId: readerGroup, readUncommitted: false, maxWaitTimeInMs: 100 });
    const alerts: Alert[] = [];
    let updates: AlertUpdate[] = [];
    const refundReasons: RefundReason[] = [];
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
        for (const m of batch.messages) {
          const v = serde.decode(m.value);
          if (batch.topic === topics.alerts) {
            const a = v as Alert;
            if (!o.external || a.event_ids.some((id) => fileEvents.has(id))) alerts.push(a);
          } else if (batch.topic === topics.alertUpdates) updates.push(v as AlertUpdate);
          else {
            const r = v as RefundReason;
            if (!o.external || fileEvents.has(r.event_id)) refundReasons.push(r);
          }
        }
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
    // External mode: only updates of this file's alerts.
    if (o.external) {
      const ids = new Set(alerts.map((a) => a.alert_id));
      updates = updates.filter((u) => ids.has(u.alert_id));
    }
    return { alerts: sortAlerts(alerts), updates: sortUpdates(updates), refundReasons: sortReasons(refundReasons), published: sent, invalid, topics, elapsedMs: Date.now() - started };
  } finally {
    await reader?.disconnect().catch(() => undefined);
    await detector?.stop().catch(() => undefined);
    if (!o.external && !o.keepTopics) {
      await deleteScopedTopics(ctx.kafka, topics);
      await admin.deleteGroups([groupId, readerGroup]).catch(() => undefined);
      for (const t of Object.values(topics)) await fetch(`${ctx.registry.url}/subjects/${encodeURIComponent(valueSubject(t))}`, { method: 'DELETE' }).catch(() => undefined);
    } else {
      await admin.deleteGroups([readerGroup]).catch(() => undefined);
    }
    await admin.disconnect();
  }
}

export async function writeAlertsJsonl(path: string, alerts: Alert[]): Promise<void> {
  await writeContractJsonl(path, 'alert', alerts);
}

/** Records as JSON lines in their contract's field order (what `tillwatch backtest` writes). */
export async function writeContractJsonl(path: string, contract: ContractName, records: readonly object[]): Promise<void> {
  const out = createWriteStream(path);
  for (const r of records) if (!out.write(`${contractJson(contract, r)}\n`)) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
}

/** What the pure engine gives for a file (the backtest's answer), sorted as replay sorts. */
export interface EngineAnswer {
  alerts: Alert[];
  updates: AlertUpdate[];
  refundReasons: RefundReason[];
}

/** Runs the backtest's engine (same rules, same validation) over the file. */
export async function backtestFile(eventsPath: string, rules: RulesConfig): Promise<EngineAnswer> {
  const bt = createBacktest(rules);
  const alerts: Alert[] = [];
  const updates: AlertUpdate[] = [];
  const refundReasons: RefundReason[] = [];
  for await (const l of readJsonLines(eventsPath)) {
    if (!('value' in l)) continue; // not published either
    const t = bt.validate(l.value, l.line, () => l.raw);
    if (isRejected(t)) continue;
    const o = bt.apply(t);
    alerts.push(...o.alerts);
    if (o.updates) updates.push(...o.updates);
    if (o.refundReasons) refundReasons.push(...o.refundReasons);
  }
  return { alerts: sortAlerts(alerts), updates: sortUpdates(updates), refundReasons: sortReasons(refundReasons) };
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
  equal: boolean;
}

function diffKind<T extends object>(contract: ContractName, live: readonly T[], backtest: readonly T[], id: (x: T) => string): KindDiff {
  // Records are compared as their contract JSON (absent nullable fields as null, as both sides write them).
  const index = (xs: readonly T[]): Map<string, string> => new Map(xs.map((x) => [id(x), contractJson(contract, x)]));
  const a = index(live);
  const b = index(backtest);
  const onlyLive = [...a.keys()].filter((k) => !b.has(k));
  const onlyBacktest = [...b.keys()].filter((k) => !a.has(k));
  const differ = [...a.keys()].filter((k) => b.has(k) && a.get(k) !== b.get(k));
  const equal = onlyLive.length === 0 && onlyBacktest.length === 0 && differ.length === 0 && live.length === backtest.length;
  return { live: live.length, backtest: backtest.length, onlyLive: onlyLive.slice(0, 5), onlyBacktest: onlyBacktest.slice(0, 5), differ: differ.slice(0, 5), equal };
}

/** Live (replay) against backtest, by id and field for field: alert_id, update_id, the reason's event_id. */
export function compareOutputs(live: EngineAnswer, backtest: EngineAnswer): OutputDiff {
  const alerts = diffKind('alert', live.alerts, backtest.alerts, (a) => a.alert_id);
  const updates = diffKind('alertUpdate', live.updates, backtest.updates, (u) => u.update_id);
  const refundReasons = diffKind('refundReason', live.refundReasons, backtest.refundReasons, (r) => r.event_id);
  return { alerts, updates, refundReasons, equal: alerts.equal && updates.equal && refundReasons.equal };
}

/** One line per kind: "alerts 42 = backtest 42" or what differs. */
export function formatOutputDiff(d: OutputDiff): string {
  const line = (name: string, k: KindDiff): string => {
    if (k.equal) return `  ${name.padEnd(15)} ${k.live} = backtest ${k.backtest}`;
    const parts = [`live ${k.live}, backtest ${k.backtest}`];
    if (k.onlyLive.length) parts.push(`only live: ${k.onlyLive.join(' ')}`);
    if (k.onlyBacktest.length) parts.push(`only backtest: ${k.onlyBacktest.join(' ')}`);
    if (k.differ.length) parts.push(`different fields: ${k.differ.join(' ')}`);
    return `  ${name.padEnd(15)} DIFFERENT: ${parts.join('; ')}`;
  };
  return [line('alerts', d.alerts), line('alert updates', d.updates), line('refund reasons', d.refundReasons)].join('\n');
}
