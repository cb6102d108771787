// A changelog restore that outlasts the group session must not cost the member its membership
// (real local broker). Without keeping the member alive while it restores, the coordinator
// evicts it after session.timeout.ms, the group rebalances, the next owner restores again: a
// livelock for large state. Here a member restores ~3000 changelog records slowly (a per-record
// hook, ~15 s) under the smallest session the broker allows (group.min.session.timeout.ms, 6 s)
// while its input partitions already hold records: it stays the one member of one generation,
// logs its progress, and its outputs are exactly once.
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import type { Admin, Kafka } from 'kafkajs';
import { createDetectorMetrics, createLogger, createRegistry } from '@tillwatch/telemetry';
import { createTransactionalProcessor, waitGroupCaughtUp, type OutputMessage, type Task } from '@tillwatch/stream';
import { randomId, testKafka } from '@tillwatch/stream/testing';

const { kafka } = testKafka('restore-it');
const created: string[] = [];
afterAll(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: created }).catch(() => undefined);
  await admin.disconnect();
});

const SESSION_MS = 6_000; // the broker's default group.min.session.timeout.ms
const PARTITIONS = 2;
const KEYS = 500;
const BEFORE = 3_000; // processed by the first member: ~3000 changelog records to restore
const AFTER = 1_000; // waiting in the input when the second member joins
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Counts per key; emits "key:n" for the n-th record of a key. Exactly once = every key shows 1..n once each. */
function counterTask(outputTopic: string): Task {
  const counts = new Map<string, number>();
  let changes: Array<[string, Buffer | null]> = [];
  return {
    restore(entries) {
      for (const [k, v] of entries) counts.set(k, Number(v.toString('utf8')));
    },
    process(_topic, records) {
      const messages: OutputMessage[] = [];
      for (const r of records) {
        const key = r.key!.toString('utf8');
        const n = (counts.get(key) ?? 0) + 1;
        counts.set(key, n);
        changes.push([key, Buffer.from(String(n))]);
        messages.push({ topic: outputTopic, key, value: Buffer.from(`${key}:${n}`) });
      }
      return { messages };
    },
    tick: () => ({ messages: [] }),
    takeChanges() {
      const c = changes;
      changes = [];
      return c;
    },
  };
}

interface LogLine {
  msg: string;
  [k: string]: unknown;
}

function capturingLogger(service: string) {
  const lines: LogLine[] = [];
  let rest = '';
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      rest += chunk.toString('utf8');
      const parts = rest.split('\n');
      rest = parts.pop() ?? '';
      for (const p of parts) if (p.trim()) lines.push(JSON.parse(p) as LogLine);
      cb();
    },
  });
  return { logger: createLogger({ service, level: 'info', destination }), lines };
}

interface Topics {
  input: string;
  changelog: string;
  output: string;
  dlq: string;
}

function member(topics: Topics, groupId: string, onRestoreRecord?: (p: number, n: number) => Promise<void> | void, prefetch?: () => Promise<void>) {
  const { logger, lines } = capturingLogger('restore-it');
  const registry = createRegistry({ service: 'restore-it', defaultMetrics: false });
  const processor = createTransactionalProcessor({
    kafka,
    groupId,
    transactionalIdPrefix: `${groupId}.txn`,
    inputs: [{ topic: topics.input, decode: (v) => v, ...(prefetch ? { prefetch } : {}) }],
    changelogTopic: topics.changelog,
    dlqTopic: topics.dlq,
    encodeDeadLetter: () => Buffer.alloc(0),
    createTask: () => counterTask(topics.output),
    metrics: createDetectorMetrics(registry),
    logger,
    tickIntervalMs: 0,
    sessionTimeoutMs: SESSION_MS,
    restoreProgressIntervalMs: 2_000,
    ...(onRestoreRecord ? { onRestoreRecord } : {}),
  });
  return { processor, lines, registry };
}

async function produce(k: Kafka, topic: string, from: number, to: number): Promise<void> {
  const producer = k.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let i = from; i < to; i += 500) {
    const messages = [];
    for (let j = i; j < Math.min(to, i + 500); j++) messages.push({ key: `k${j % KEYS}`, value: String(j) });
    await producer.send({ topic, acks: -1, messages });
  }
  await producer.disconnect();
}

/** Every committed output record (read_committed), once the topic is quiet after `expected` arrived. */
async function readOutputs(topic: string, expected: number, timeoutMs = 20_000): Promise<string[]> {
  const consumer = kafka.consumer({ groupId: randomId('reader'), readUncommitted: false, maxWaitTimeInMs: 100 });
  const out: string[] = [];
  let last = Date.now();
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      last = Date.now();
      for (const m of batch.messages) out.push(m.value!.toString('utf8'));
    },
  });
  const deadline = Date.now() + timeoutMs;
  while ((out.length < expected || Date.now() - last < 1_500) && Date.now() < deadline) await sleep(100);
  await consumer.disconnect();
  return out;
}

/** Topics of one test, and a first member that builds the state: one changelog record per input record. */
async function withState(admin: Admin): Promise<{ topics: Topics; groupId: string }> {
  const id = randomId('restore');
  const topics = { input: `${id}.input`, changelog: `${id}.changelog`, output: `${id}.output`, dlq: `${id}.dlq` };
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: topics.input, numPartitions: PARTITIONS },
      { topic: topics.changelog, numPartitions: PARTITIONS, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] },
      { topic: topics.output, numPartitions: PARTITIONS },
      { topic: topics.dlq, numPartitions: 1 },
    ],
  });
  created.push(...Object.values(topics));
  const groupId = randomId('g-restore');
  await produce(kafka, topics.input, 0, BEFORE);
  const first = member(topics, groupId);
  await first.processor.start();
  await waitGroupCaughtUp(admin, groupId, topics.input, 30_000);
  await first.processor.stop();
  // More input waits while the next member restores that state.
  await produce(kafka, topics.input, BEFORE, BEFORE + AFTER);
  return { topics, groupId };
}

/** Exactly once across all members: every key shows 1..n once each, nothing else. */
async function expectExactlyOnce(topic: string): Promise<void> {
  const out = await readOutputs(topic, BEFORE + AFTER);
  expect(out).toHaveLength(BEFORE + AFTER);
  const byKey = new Map<string, number[]>();
  for (const v of out) {
    const [k, n] = v.split(':');
    const list = byKey.get(k!) ?? [];
    list.push(Number(n));
    byKey.set(k!, list);
  }
  expect(byKey.size).toBe(KEYS);
  for (const [, ns] of byKey) expect(ns).toEqual(ns.map((_, i) => i + 1));
}

/** ~50 ms per 10 changelog records applied: ~15 s for the state built by withState. */
const slowRestore = (_p: number, n: number) => (n % 10 === 0 ? sleep(50) : undefined);
const named = (lines: LogLine[], msg: string) => lines.filter((l) => l.msg === msg);

describe('changelog restore longer than the group session (real broker)', () => {
  it('keeps the member in its generation while restoring, logs progress, outputs exactly once', { timeout: 90_000 }, async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const { topics, groupId } = await withState(admin);
      const second = member(topics, groupId, slowRestore);
      await second.processor.start();
      try {
        await waitGroupCaughtUp(admin, groupId, topics.input, 45_000);
        // The member the group knows now is the one that joined before the restore.
        const [group] = (await admin.describeGroups([groupId])).groups;
        expect(group?.members.map((m) => m.memberId)).toEqual([named(second.lines, 'joined consumer group')[0]?.memberId]);
      } finally {
        await second.processor.stop();
      }

      const lines = second.lines;
      const restored = named(lines, 'task restored from changelog');
      const progress = named(lines, 'changelog restore in progress');
      // One member, one generation: no eviction, no rebalance during (or after) the restore.
      expect(named(lines, 'joined consumer group')).toHaveLength(1);
      expect(named(lines, 'consumer group rebalancing')).toEqual([]);
      // The restore really outlasted the session (more than twice), and said how far it was.
      expect(restored).toHaveLength(PARTITIONS);
      expect(Math.max(...restored.map((l) => Number(l.ms)))).toBeGreaterThan(2 * SESSION_MS);
      expect(restored.reduce((n, l) => n + Number(l.records), 0)).toBeGreaterThanOrEqual(BEFORE);
      expect(progress.length).toBeGreaterThanOrEqual(3);
      const seen = progress.map((l) => Number(l.records));
      expect(seen).toEqual([...seen].sort((a, b) => a - b));
      expect(seen.at(-1)).toBeGreaterThan(0);
      // Restore metrics: every record read counted, one duration per partition.
      const records = await second.registry.getSingleMetricAsString('tillwatch_changelog_restore_records_total');
      expect(Number(/_total\{[^}]*\} (\d+)/.exec(records)?.[1])).toBeGreaterThanOrEqual(BEFORE);
      const seconds = await second.registry.getSingleMetricAsString('tillwatch_changelog_restore_seconds');
      expect(Number(/_count\{[^}]*\} (\d+)/.exec(seconds)?.[1])).toBe(PARTITIONS);

      await expectExactlyOnce(topics.output);
    } finally {
      await admin.disconnect();
    }
  });

  it('keeps the member while one batch outlasts the session (heartbeats during the batch), outputs exactly once', { timeout: 90_000 }, async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const { topics, groupId } = await withState(admin);
      // The first batch waits 2.5 sessions inside eachBatch (an async step of the batch: a slow
      // commit, a loaded CPU); kafkajs's fetch loop, which alone heartbeats, waits for it.
      let slowed = 0;
      const slowBatch = async () => {
        if (slowed++ === 0) await sleep(2.5 * SESSION_MS);
      };
      const m = member(topics, groupId, undefined, slowBatch);
      await m.processor.start();
      try {
        await waitGroupCaughtUp(admin, groupId, topics.input, 60_000);
      } finally {
        await m.processor.stop();
      }
      expect(slowed).toBeGreaterThan(1);
      // One member, one generation: not evicted, no rebalance.
      expect(named(m.lines, 'joined consumer group')).toHaveLength(1);
      expect(named(m.lines, 'consumer group rebalancing')).toEqual([]);
      const joins = await m.registry.getSingleMetricAsString('tillwatch_consumer_group_joins_total');
      expect(joins).toMatch(/kind="first"[^}]*\} 1\n?$/m);
      expect(joins).not.toMatch(/kind="(rejoin|new_member)"/);
      await expectExactlyOnce(topics.output);
    } finally {
      await admin.disconnect();
    }
  });

  it('rejoins at once when a member joins mid-restore, keeps restoring what stays, outputs exactly once', { timeout: 90_000 }, async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const { topics, groupId } = await withState(admin);
      const slow = member(topics, groupId, slowRestore);
      const other = member(topics, groupId);
      await slow.processor.start();
      try {
        const deadline = Date.now() + 20_000;
        while (named(slow.lines, 'changelog restore in progress').length === 0 && Date.now() < deadline) await sleep(100);
        const joinedAt = Date.now();
        await other.processor.start();
        await waitGroupCaughtUp(admin, groupId, topics.input, 60_000);
        const [group] = (await admin.describeGroups([groupId])).groups;
        expect(group?.members).toHaveLength(2);

        const joins = named(slow.lines, 'joined consumer group');
        // The restoring member took part in the rebalance at once, not after its restore: one
        // rebalance (the join of the other member), under the same member id.
        expect(joins).toHaveLength(2);
        expect(joins[1]?.memberId).toBe(joins[0]?.memberId);
        const rejoined = Number(joins[1]?.time);
        expect(rejoined - joinedAt).toBeLessThan(SESSION_MS);
        const restored = named(slow.lines, 'task restored from changelog');
        expect(restored).toHaveLength(1);
        expect(Number(restored[0]?.time)).toBeGreaterThan(rejoined);
        // Each member owns one partition; neither restored twice.
        expect(slow.processor.assignedPartitions()).toHaveLength(1);
        expect(other.processor.assignedPartitions()).toHaveLength(1);
        expect(named(other.lines, 'task restored from changelog')).toHaveLength(1);
        expect(named(other.lines, 'joined consumer group')).toHaveLength(1);
      } finally {
        await Promise.all([slow.processor.stop(), other.processor.stop()]);
      }
      await expectExactlyOnce(topics.output);
    } finally {
      await admin.disconnect();
    }
  });
});
