// Exactly-once stream processing on kafkajs (KIP-98 transactions, "EOS v1" style): one
// transactional producer per task (partition number), with transactional.id = <prefix>.<N>.
// Each consumed batch becomes ONE Kafka transaction holding its outputs, its dead letters, its
// changelog writes and the consumed offsets (sendOffsets), so downstream read_committed consumers
// see all of a batch's effects or none. A new owner of task N starts its producer with the same
// transactional.id, which fences the previous owner (zombie) and aborts its open transaction.
// kafkajs does not implement KIP-447 (group-generation fencing via TxnOffsetCommit v3), which is
// why the transactional id is per task rather than per process.
import { randomUUID } from 'node:crypto';
import type { Admin, Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import type { Logger, StreamMetrics } from '@tillwatch/telemetry';
import type { DeadLetter } from '@tillwatch/schemas';
import { isPoison, FatalError, RetriableError, type PoisonRecordError } from '../errors.js';
import { deadLetterMessage } from '../dead-letter.js';
import { CoPartitionedAssigner } from './copartitioned-assigner.js';
import { MARKER_KEY, restoreChangelog } from './changelog.js';
import type { DecodedRecord, InputTopic, OutputMessage, Task } from './task.js';

export interface ProcessorMetrics extends StreamMetrics {
  txnLatency?: { observe(v: number): void };
  restoreSeconds?: { observe(v: number): void };
  restoreRecords?: { inc(v?: number): void };
}

export interface TransactionalProcessorOptions {
  kafka: Kafka;
  groupId: string;
  transactionalIdPrefix: string;
  inputs: InputTopic[];
  changelogTopic: string;
  dlqTopic: string;
  /** Encodes a dead letter for the DLQ topic (Avro through the registry). */
  encodeDeadLetter(d: DeadLetter): Buffer;
  createTask(partition: number): Task;
  metrics: ProcessorMetrics;
  logger: Logger;
  /** Wall-clock tick for quiet-partition timers; 0 disables. */
  tickIntervalMs?: number;
  /** Partitions processed at the same time (each in its own transaction). */
  concurrency?: number;
  /** kafkajs fetch long-poll when a partition is empty. */
  maxWaitTimeInMs?: number;
  sessionTimeoutMs?: number;
  /** An error no retry can cure: the process should stop and exit non-zero (default: log it). */
  onFatal?: (error: Error) => void;
  now?: () => number;
}

interface TaskEntry {
  partition: number;
  producer: Producer;
  task: Task | undefined;
  ready: Promise<void>;
  lock: Promise<unknown>;
  lost: boolean;
  closed: boolean;
  /** The first restore attempt finished (successfully or not). */
  settled?: boolean;
  /** A transaction of this producer failed: it must be replaced before the next one (kafkajs does not recover a producer stuck in COMMITTING/ABORTING). */
  broken: boolean;
  /** Committed offset per input topic, read after fencing: records below it are already in the restored state. */
  committed: Map<string, bigint>;
}

export interface TransactionalProcessor {
  start(): Promise<void>;
  /** Finishes the in-flight batch (its transaction commits or aborts), leaves the group, closes producers. */
  stop(): Promise<void>;
  /** True once the consumer joined and every assigned task has restored. */
  ready(): boolean;
  assignedPartitions(): number[];
}

/** Well under the broker's default message.max.bytes (1 MiB) per partition batch. */
const MAX_REQUEST_BYTES = 512 * 1024;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const kafkaType = (e: unknown): string => {
  const x = e as { type?: string; originalError?: { type?: string } } | undefined;
  return x?.type ?? x?.originalError?.type ?? '';
};

function isFenced(e: unknown): boolean {
  return ['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED', 'INVALID_PRODUCER_ID_MAPPING'].includes(kafkaType(e));
}

// Kafka errors that no retry can cure: configuration or authorization problems, or a record the
// broker will never accept. Everything else from Kafka (leader moves, coordinator loading,
// CONCURRENT_TRANSACTIONS, timeouts, connection loss) is retried with the offsets kept.
const FATAL_KAFKA = new Set([
  'MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD', 'TOPIC_AUTHORIZATION_FAILED', 'GROUP_AUTHORIZATION_FAILED',
  'TRANSACTIONAL_ID_AUTHORIZATION_FAILED', 'CLUSTER_AUTHORIZATION_FAILED', 'SASL_AUTHENTICATION_FAILED', 'INVALID_TRANSACTION_TIMEOUT', 'UNSUPPORTED_VERSION',
]);

/** Retriable: back off and retry with the offsets kept. Fatal: stop and exit non-zero. */
export function classifyError(e: unknown): 'fenced' | 'retriable' | 'fatal' {
  if (isFenced(e)) return 'fenced';
  if (e instanceof RetriableError) return 'retriable';
  if (e instanceof FatalError) return 'fatal';
  const name = (e as { name?: string } | undefined)?.name ?? '';
  if (name.startsWith('KafkaJS')) return FATAL_KAFKA.has(kafkaType(e)) ? 'fatal' : 'retriable';
  // Anything else is a defect (e.g. a bug in a task): retrying would loop on it forever.
  return 'fatal';
}

export function createTransactionalProcessor(o: TransactionalProcessorOptions): TransactionalProcessor {
  const now = o.now ?? Date.now;
  const tasks = new Map<number, TaskEntry>();
  const inputs = new Map(o.inputs.map((i) => [i.topic, i]));
  let consumer: Consumer | undefined;
  let admin: Admin | undefined;
  let tickTimer: NodeJS.Timeout | undefined;
  let joined = false;
  let stopping = false;

  let fatalSeen = false;
  const fatal = (e: Error) => {
    if (fatalSeen) return;
    fatalSeen = true;
    o.logger.fatal({ err: e }, 'fatal error: stopping');
    o.onFatal?.(e);
  };

  const withLock = <T>(entry: TaskEntry, fn: () => Promise<T>): Promise<T> => {
    const run = entry.lock.then(fn, fn);
    entry.lock = run.catch(() => undefined);
    return run;
  };

  async function commit(entry: TaskEntry, messages: OutputMessage[], offsets?: { topic: string; partition: number; offset: string }): Promise<void> {
    const started = performance.now();
    const txn = await entry.producer.transaction();
    try {
      // kafkajs puts a request's messages for one partition into one record batch, and the broker
      // refuses batches above message.max.bytes (1 MiB by default): send in bounded requests, all
      // inside the same transaction.
      let byTopic = new Map<string, { key: string | Buffer | null; value: Buffer | null; partition?: number }[]>();
      let bytes = 0;
      const sendChunk = async () => {
        if (byTopic.size === 0) return;
        const topicMessages = [...byTopic].map(([topic, msgs]) => ({ topic, messages: msgs }));
        byTopic = new Map();
        bytes = 0;
        await txn.sendBatch({ topicMessages });
      };
      for (const m of messages) {
        let list = byTopic.get(m.topic);
        if (!list) byTopic.set(m.topic, (list = []));
        list.push(m.partition === undefined ? { key: m.key, value: m.value } : { key: m.key, value: m.value, partition: m.partition });
        bytes += (m.value?.length ?? 0) + (typeof m.key === 'string' ? m.key.length : (m.key?.length ?? 0)) + 32;
        if (bytes >= MAX_REQUEST_BYTES) await sendChunk();
      }
      await sendChunk();
      if (offsets) {
        await txn.sendOffsets({ consumerGroupId: o.groupId, topics: [{ topic: offsets.topic, partitions: [{ partition: offsets.partition, offset: offsets.offset }] }] });
      }
      await txn.commit();
    } catch (e) {
      await txn.abort().catch(() => undefined);
      entry.broken = true;
      throw e;
    }
    o.metrics.txnLatency?.observe((performance.now() - started) / 1000);
  }

  /** Fences the previous owner, commits a marker, reads the committed changelog up to it. */
  async function restore(entries: TaskEntry[]): Promise<void> {
    if (entries.length === 0) return;
    for (const e of entries) {
      if (e.broken) {
        // A new producer with the same transactional.id: its InitProducerId completes or aborts
        // whatever the old one left open.
        await e.producer.disconnect().catch(() => undefined);
        e.producer = newProducer(e.partition);
        e.broken = false;
      }
      await e.producer.connect();
    }
    const markers = new Map<number, string>();
    for (const e of entries) {
      const nonce = randomUUID();
      await commit(e, [{ topic: o.changelogTopic, key: MARKER_KEY, value: Buffer.from(nonce), partition: e.partition }]);
      markers.set(e.partition, nonce);
    }
    // The markers fenced every earlier owner, so the group's committed offsets are now final: the
    // restored state includes exactly the records below them. Batches already fetched (or
    // re-delivered after a failure whose commit did land) skip those records.
    const committed = await admin!.fetchOffsets({ groupId: o.groupId, topics: o.inputs.map((i) => i.topic) });
    for (const e of entries) {
      e.committed = new Map();
      for (const t of committed) {
        const p = t.partitions.find((x) => x.partition === e.partition);
        if (p && BigInt(p.offset) >= 0n) e.committed.set(t.topic, BigInt(p.offset));
      }
    }
    const started = performance.now();
    const results = await restoreChangelog({ kafka: o.kafka, topic: o.changelogTopic, markers, groupPrefix: o.groupId, logger: o.logger });
    for (const e of entries) {
      const r = results.get(e.partition)!;
      const task = o.createTask(e.partition);
      task.restore(r.entries);
      e.task = task;
      o.metrics.restoreRecords?.inc(r.records);
      o.logger.info({ partition: e.partition, keys: r.entries.size, records: r.records, bytes: r.bytes, ms: Math.round(r.ms) }, 'task restored from changelog');
    }
    o.metrics.restoreSeconds?.observe((performance.now() - started) / 1000);
  }

  const newProducer = (partition: number): Producer =>
    o.kafka.producer({
      transactionalId: `${o.transactionalIdPrefix}.${partition}`,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: 60_000,
      // CONCURRENT_TRANSACTIONS right after a commit clears within milliseconds (the broker is
      // writing the previous transaction's markers): retry fast, as the Java client does.
      retry: { initialRetryTime: 10, maxRetryTime: 2_000, retries: 12 },
    });

  function newEntry(partition: number): TaskEntry {
    return { partition, producer: newProducer(partition), task: undefined, ready: Promise.resolve(), lock: Promise.resolve(), lost: false, closed: false, broken: false, committed: new Map() };
  }

  async function closeEntry(entry: TaskEntry): Promise<void> {
    entry.closed = true;
    await withLock(entry, async () => {
      await entry.producer.disconnect().catch(() => undefined);
    });
  }

  async function onAssignment(assignment: Record<string, number[]>): Promise<void> {
    const wanted = new Set<number>();
    for (const [topic, ps] of Object.entries(assignment)) if (inputs.has(topic)) for (const p of ps) wanted.add(p);
    const revoked: TaskEntry[] = [];
    for (const [p, entry] of tasks) {
      if (!wanted.has(p) || entry.lost || (entry.task === undefined && entry.settled)) {
        tasks.delete(p);
        revoked.push(entry);
      }
    }
    const fresh: TaskEntry[] = [];
    for (const p of [...wanted].sort((a, b) => a - b)) {
      if (tasks.has(p)) continue;
      const entry = newEntry(p);
      tasks.set(p, entry);
      fresh.push(entry);
    }
    // Revoked tasks close in the background, after the new ones are registered: batches of newly
    // assigned partitions may arrive right after the join.
    for (const entry of revoked) {
      void closeEntry(entry).then(() => o.logger.info({ partition: entry.partition }, 'task revoked'));
    }
    if (fresh.length === 0) return;
    const ready = restoreWithRetry(fresh).finally(() => {
      for (const e of fresh) e.settled = true;
    });
    for (const e of fresh) e.ready = ready;
    ready.catch((e: unknown) => o.logger.error({ err: e }, 'restore failed'));
  }

  async function restoreWithRetry(entries: TaskEntry[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (stopping || entries.every((e) => e.closed)) return;
      try {
        await restore(entries.filter((e) => !e.closed));
        return;
      } catch (e) {
        const kind = classifyError(e);
        if (kind === 'fenced') {
          // Another instance owns these partitions now: drop them; the next assignment decides.
          for (const x of entries) x.lost = true;
          return;
        }
        if (kind === 'fatal') {
          fatal(e as Error);
          throw e;
        }
        const wait = Math.min(30_000, 250 * 2 ** attempt);
        o.logger.warn({ err: e, attempt, wait }, 'restore failed; retrying');
        o.metrics.retries.inc({ stage: 'restore', error_class: (e as Error).name });
        await sleep(wait);
      }
    }
  }

  function deadLetter(msg: EachBatchPayload['batch']['messages'][number], topic: string, partition: number, err: PoisonRecordError): OutputMessage {
    o.metrics.dlq.inc({ topic, error_class: err.errorClass });
    const source = { topic, partition, offset: msg.offset, key: msg.key ?? null, value: msg.value ?? null };
    return deadLetterMessage(o.dlqTopic, (d) => o.encodeDeadLetter(d), source, { errorClass: err.errorClass, reason: err.message, stage: `${o.groupId}.decode` }, now());
  }

  async function eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat, isRunning, isStale, resolveOffset } = payload;
    if (batch.messages.length === 0) return;
    const entry = tasks.get(batch.partition);
    if (!entry) throw new Error(`batch for unassigned partition ${batch.topic}-${batch.partition}`);
    await entry.ready.catch(() => undefined);
    const input = inputs.get(batch.topic)!;
    const last = batch.messages[batch.messages.length - 1]!.offset;
    o.metrics.consumed.inc({ topic: batch.topic }, batch.messages.length);
    const started = performance.now();

    await withLock(entry, async () => {
      for (let attempt = 0; ; attempt++) {
        if (entry.closed || entry.lost || !isRunning() || isStale()) return;
        // A task without state (its restore failed, or a tick failed): rebuild it before anything else.
        if (!entry.task) {
          await restoreWithRetry([entry]);
          if (!entry.task) return;
        }
        // Records below the committed offset are already in the restored state.
        const from = entry.committed.get(batch.topic) ?? -1n;
        const messages = from < 0n ? batch.messages : batch.messages.filter((m) => BigInt(m.offset) >= from);
        if (messages.length === 0) {
          resolveOffset(last);
          return;
        }
        try {
          if (input.prefetch) await input.prefetch(messages.map((m) => m.value));
          const records: DecodedRecord[] = [];
          const dead: OutputMessage[] = [];
          for (const m of messages) {
            try {
              records.push({ topic: batch.topic, partition: batch.partition, offset: m.offset, key: m.key, value: input.decode(m.value) });
            } catch (e) {
              if (!isPoison(e)) throw e;
              dead.push(deadLetter(m, batch.topic, batch.partition, e));
            }
          }
          const result = entry.task!.process(batch.topic, records, now());
          const changes = entry.task!.takeChanges().map(([key, value]): OutputMessage => ({ topic: o.changelogTopic, key, value, partition: batch.partition }));
          const out = dead.length + changes.length === 0 ? result.messages : [...result.messages, ...dead, ...changes];
          await commit(entry, out, { topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() });
          entry.committed.set(batch.topic, BigInt(last) + 1n);
          resolveOffset(last);
          o.metrics.decoded.inc({ topic: batch.topic }, records.length);
          o.metrics.consumerLag.set({ topic: batch.topic, partition: String(batch.partition) }, Number(batch.offsetLag()));
          o.metrics.batchLatency.observe({ stage: 'process' }, (performance.now() - started) / 1000);
          result.committed?.();
          return;
        } catch (e) {
          const kind = classifyError(e);
          if (kind === 'fenced') {
            entry.lost = true;
            throw new Error(`task ${batch.partition} was fenced by a newer owner; rejoining`, { cause: e });
          }
          if (kind === 'fatal') {
            // Nothing was committed for this batch: the offsets stay where they were.
            entry.closed = true;
            entry.task = undefined;
            fatal(new FatalError(`partition ${batch.partition} of ${batch.topic} cannot be processed: ${(e as Error).message}`, { cause: e }));
            return;
          }
          // The task's in-memory state may include this failed batch: rebuild it from the
          // committed changelog before trying again, so nothing is applied twice.
          const wait = Math.min(30_000, 250 * 2 ** attempt);
          o.logger.warn({ err: e, partition: batch.partition, attempt, wait }, 'batch failed; restoring task and retrying');
          o.metrics.retries.inc({ stage: 'process', error_class: (e as Error).name });
          entry.task = undefined;
          await sleep(wait);
          await heartbeat().catch(() => undefined);
          await restoreWithRetry([entry]);
          if (!entry.task) return;
        }
      }
    });
    await heartbeat().catch(() => undefined);
  }

  async function tick(): Promise<void> {
    for (const entry of tasks.values()) {
      if (!entry.task || entry.closed || entry.lost) continue;
      await withLock(entry, async () => {
        if (!entry.task || entry.closed) return;
        const result = entry.task.tick(now());
        const changes = entry.task.takeChanges();
        if (result.messages.length === 0 && changes.length === 0) return;
        const messages = [...result.messages, ...changes.map(([key, value]): OutputMessage => ({ topic: o.changelogTopic, key, value, partition: entry.partition }))];
        try {
          await commit(entry, messages);
          result.committed?.();
        } catch (e) {
          o.logger.warn({ err: e, partition: entry.partition }, 'tick transaction failed; restoring task');
          entry.task = undefined;
          const kind = classifyError(e);
          if (kind === 'fenced') entry.lost = true;
          else if (kind === 'fatal') fatal(e as Error);
          else await restoreWithRetry([entry]);
        }
      }).catch((e: unknown) => o.logger.error({ err: e }, 'tick failed'));
    }
  }

  return {
    async start() {
      admin = o.kafka.admin();
      await admin.connect();
      consumer = o.kafka.consumer({
        groupId: o.groupId,
        readUncommitted: false,
        partitionAssigners: [CoPartitionedAssigner],
        sessionTimeout: o.sessionTimeoutMs ?? 30_000,
        heartbeatInterval: 3_000,
        maxWaitTimeInMs: o.maxWaitTimeInMs ?? 100,
        maxBytesPerPartition: 4 * 1024 * 1024,
      });
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        joined = true;
        void onAssignment(e.payload.memberAssignment).catch((err: unknown) => o.logger.error({ err }, 'assignment handling failed'));
      });
      // kafkajs restarts its consumer after retriable crashes; after any other it stays down, and
      // a detector that consumes nothing must not look healthy.
      consumer.on(consumer.events.CRASH, (e) => {
        joined = false;
        if (!e.payload.restart && !stopping) fatal(new FatalError(`Kafka consumer crashed and will not restart: ${e.payload.error.message}`, { cause: e.payload.error }));
      });
      await consumer.connect();
      for (const i of o.inputs) await consumer.subscribe({ topic: i.topic, fromBeginning: true });
      // Tasks are independent (own state, own transactional producer, a lock per task), so their
      // batches run concurrently: one partition's transaction round trips do not delay the others.
      await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: o.concurrency ?? 8, eachBatch });
      if ((o.tickIntervalMs ?? 1000) > 0) {
        let ticking = false;
        tickTimer = setInterval(() => {
          if (ticking) return;
          ticking = true;
          void tick().finally(() => (ticking = false));
        }, o.tickIntervalMs ?? 1000);
      }
    },
    async stop() {
      stopping = true;
      if (tickTimer) clearInterval(tickTimer);
      // kafkajs finishes the batch in flight (our transaction commits or aborts) before leaving.
      await consumer?.disconnect();
      await Promise.all([...tasks.values()].map(closeEntry));
      tasks.clear();
      await admin?.disconnect();
    },
    ready: () => joined && [...tasks.values()].every((t) => t.task !== undefined),
    assignedPartitions: () => [...tasks.keys()].sort((a, b) => a - b),
  };
}
