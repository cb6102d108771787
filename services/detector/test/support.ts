// Shared support for the detector's integration tests: generated scenarios, their backtest,
// run-scoped topics on the real broker and registry, and an alert reader (read_committed).
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AssignerProtocol, type Kafka } from 'kafkajs';
import { AvroSchemas, valueSubject, type Alert, type TopicRole, type Transaction } from '@tillwatch/schemas';
import { createRuleEngine, defaultRulesConfig, type RulesConfig } from '@tillwatch/rules';
import { createFleet } from '@tillwatch/simulator';
import { createAvroSerde, deleteScopedTopics, provisionScopedTopics, waitGroupCaughtUp, type RegistryClient } from '@tillwatch/stream';

export const T0 = Date.UTC(2026, 0, 5, 9, 0, 0);

/** A dense fleet stream with every anomaly injected; received times strictly in arrival order. */
export function scenario(n: number, seed = 7, terminals = 60): Transaction[] {
  const fleet = createFleet({ terminals, seed, anomalyRate: 0.04, cards: 400 });
  const out: Transaction[] = [];
  let now = T0;
  while (out.length < n) {
    now += 250;
    for (const e of fleet.next(now)) out.push(e);
  }
  return out;
}

export function backtest(events: Transaction[], rules: RulesConfig = defaultRulesConfig()): Alert[] {
  const engine = createRuleEngine(rules);
  const alerts: Alert[] = [];
  for (const e of events) for (const a of engine.onTransaction(e).alerts) alerts.push(a);
  return alerts;
}

export const setupTopics = (kafka: Kafka, registry: RegistryClient, partitions = 3, prefix?: string): Promise<Record<TopicRole, string>> =>
  provisionScopedTopics(kafka, registry, partitions, prefix);

export const deleteTopics = deleteScopedTopics;

/** An open producer of transactions to one topic (Avro through the registry), keyed by merchant_id like the gateways. */
export async function openEventProducer(kafka: Kafka, registry: RegistryClient, topic: string, schema: object = AvroSchemas.transaction): Promise<{ send(events: Transaction[]): Promise<void>; close(): Promise<void> }> {
  const serde = createAvroSerde<Transaction>(registry, valueSubject(topic), schema);
  await serde.init();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  return {
    async send(events) {
      for (let i = 0; i < events.length; i += 500) {
        await producer.send({ topic, acks: -1, messages: events.slice(i, i + 500).map((e) => ({ key: e.merchant_id, value: serde.encode(e) })) });
      }
    },
    close: () => producer.disconnect(),
  };
}

export async function produceEvents(kafka: Kafka, registry: RegistryClient, topic: string, events: Transaction[], schema: object = AvroSchemas.transaction): Promise<void> {
  const producer = await openEventProducer(kafka, registry, topic, schema);
  try {
    await producer.send(events);
  } finally {
    await producer.close();
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until the group's committed offsets reach the end of the topic. */
export async function waitCommitted(kafka: Kafka, groupId: string, topic: string, timeoutMs = 120_000): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await waitGroupCaughtUp(admin, groupId, topic, timeoutMs);
  } finally {
    await admin.disconnect();
  }
}

/** A record read back with its position. */
export interface ReadRecord<T> {
  partition: number;
  offset: bigint;
  value: T;
}

/** Reads every committed record of a topic (read_committed) until it is idle for idleMs; each partition's records in offset order. */
export async function readAllRecords<T>(kafka: Kafka, registry: RegistryClient, topic: string, schema: object, idleMs = 2500): Promise<ReadRecord<T>[]> {
  const serde = createAvroSerde<T>(registry, valueSubject(topic), schema);
  const consumer = kafka.consumer({ groupId: `reader-${topic}-${Math.random().toString(36).slice(2)}`, readUncommitted: false, maxWaitTimeInMs: 100 });
  const out: ReadRecord<T>[] = [];
  let last = Date.now();
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      last = Date.now();
      await serde.prefetch(batch.messages.map((m) => m.value));
      for (const m of batch.messages) out.push({ partition: batch.partition, offset: BigInt(m.offset), value: serde.decode(m.value) });
    },
  });
  while (Date.now() - last < idleMs) await sleep(100);
  await consumer.disconnect();
  return out;
}

/** Reads every committed record of a topic (read_committed) until it is idle for idleMs. */
export async function readAll<T>(kafka: Kafka, registry: RegistryClient, topic: string, schema: object, idleMs = 2500): Promise<T[]> {
  return (await readAllRecords<T>(kafka, registry, topic, schema, idleMs)).map((r) => r.value);
}

export const ids = (alerts: Alert[]): string[] => alerts.map((a) => a.alert_id).sort();

/** alert_id -> count, for finding duplicates. */
export function duplicates(alerts: Alert[]): string[] {
  const seen = new Map<string, number>();
  for (const a of alerts) seen.set(a.alert_id, (seen.get(a.alert_id) ?? 0) + 1);
  return [...seen].filter(([, n]) => n > 1).map(([id]) => id);
}

export { closeStreamTime } from '@tillwatch/detector';

const cli = fileURLToPath(new URL('../../cli/bin/tillwatch.js', import.meta.url));

/** An alert's content that must equal the backtest's (id, rule, terminal, time, evidence, details). */
export const alertDigest = (a: Alert): string => `${a.alert_id} ${a.rule} ${a.terminal_id} ${a.detected_at} ${a.event_ids.join(',')} ${JSON.stringify(a.details)}`;

/**
 * The detector as the real CLI process (`tillwatch detector`) on prefixed topics, in a given group.
 * `logLevel`: the child's LOG_LEVEL (default warn, or TEST_DETECTOR_LOG_LEVEL); `info` logs each task's restore.
 */
export function spawnDetector(prefix: string, groupId: string, logLevel?: 'debug' | 'info' | 'warn' | 'error'): { child: ChildProcess; exited: Promise<number | null>; output: () => string } {
  let output = '';
  const child = spawn(process.execPath, [cli, 'detector'], {
    env: { ...process.env, TOPIC_PREFIX: prefix, DETECTOR_GROUP_ID: groupId, HTTP_PORT: '0', LOG_LEVEL: logLevel ?? process.env.TEST_DETECTOR_LOG_LEVEL ?? 'warn', DETECTOR_WALL_CLOCK_TIMERS: 'false' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, output: () => output };
}

/** Partitions of `topic` owned by each member of the group, once it is stable with `members` members owning all `partitions`. */
export async function stableAssignment(kafka: Kafka, groupId: string, topic: string, partitions: number, members: number, timeoutMs = 90_000): Promise<number[][]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      const { groups } = await admin.describeGroups([groupId]);
      const g = groups[0];
      last = `${g?.state} with ${g?.members.length} members`;
      if (g?.state === 'Stable' && g.members.length === members) {
        const parts = g.members.map((m) => {
          const a = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
          return [...(a?.assignment[topic] ?? [])].sort((x, y) => x - y);
        });
        // Stable and every partition owned: the assignment is final.
        if (parts.flat().length === partitions) return parts;
      }
      await sleep(250);
    }
    throw new Error(`group ${groupId} not stable with ${members} members within ${timeoutMs} ms (last: ${last})`);
  } finally {
    await admin.disconnect();
  }
}
