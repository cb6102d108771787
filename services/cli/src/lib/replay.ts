// End-to-end check an operator runs: publish a JSON-lines file to Kafka, let a detector process
// it (in this process, on run-scoped topics, unless an external one is running), read the alerts
// back from the alert topic (read_committed) until the stream is idle, and return them.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { AvroSchemas, contractJson, valueSubject, type Alert, type TopicRole } from '@tillwatch/schemas';
import { closeStreamTime, createDetector } from '@tillwatch/detector';
import type { RulesConfig } from '@tillwatch/rules';

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
    const startOffsets = o.external ? await admin.fetchTopicOffsets(topics.alerts) : undefined;

    const { sent, invalid, maxReceivedTime } = await publishFile(ctx, o.eventsPath, topics.transactions, topics.heartbeats);
    log(`published ${sent} events to ${topics.transactions}${invalid.length ? ` (${invalid.length} invalid lines not sent)` : ''}`);
    await waitGroupCaughtUp(admin, groupId, topics.transactions, deadline - Date.now());
    // End every partition's clock at the file's last received time, as the backtest's clock ends.
    if (!o.external && maxReceivedTime > 0) {
      await closeStreamTime(ctx.kafka, ctx.registry, topics.heartbeats, maxReceivedTime);
      await waitGroupCaughtUp(admin, groupId, topics.heartbeats, deadline - Date.now());
    }
    log('detector caught up; reading alerts');

    const serde = createAvroSerde<Alert>(ctx.registry, valueSubject(topics.alerts), AvroSchemas.alert);
    const consumer = ctx.kafka.consumer({ groupId: readerGroup, readUncommitted: false, maxWaitTimeInMs: 100 });
    const alerts: Alert[] = [];
    let lastActivity = Date.now();
    reader = consumer;
    await consumer.connect();
    await consumer.subscribe({ topic: topics.alerts, fromBeginning: true });
    if (startOffsets) {
      consumer.on(consumer.events.GROUP_JOIN, () => {
        for (const p of startOffsets) consumer.seek({ topic: topics.alerts, partition: p.partition, offset: p.offset });
      });
    }
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        lastActivity = Date.now();
        await serde.prefetch(batch.messages.map((m) => m.value));
        for (const m of batch.messages) {
          const a = serde.decode(m.value);
          if (!o.external || a.event_ids.some((id) => fileEvents.has(id))) alerts.push(a);
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
    return { alerts: sortAlerts(alerts), published: sent, invalid, topics, elapsedMs: Date.now() - started };
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
  const out = createWriteStream(path);
  for (const a of alerts) if (!out.write(`${alertJson(a)}\n`)) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
}
