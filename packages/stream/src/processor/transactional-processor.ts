// Exactly-once stream processing on kafkajs (KIP-98 transactions, "EOS v1" style): one
// transactional producer per task (partition number), with transactional.id = <prefix>.<N>.
// Each consumed batch becomes ONE Kafka transaction holding its outputs, its dead letters, its
// changelog writes and the consumed offsets (sendOffsets), so downstream read_committed consumers
// see all of a batch's effects or none. A new owner of task N starts its producer with the same
// transactional.id, which fences the previous owner (zombie) and aborts its open transaction.
// kafkajs does not implement KIP-447 (group-generation fencing via TxnOffsetCommit v3), which is
// why the transactional id is per task rather than per process.
//
// Liveness during restores: kafkajs heartbeats only from its fetch loop (after each batch, or
// after a fetch that returned nothing; there is no background heartbeat thread as in the Java
// client since KIP-62). A batch that waited inside eachBatch for a long changelog restore would
// stop the heartbeats, the member's session would expire, the group would rebalance, and the
// next owner would start the same long restore again: a livelock for large state. So, as Kafka
// Streams does, the input partitions of a task without state are paused (consumer.pause) until
// its restore ends: the fetch loop keeps running for the other partitions and heartbeats after
// every empty fetch. The few waits left inside eachBatch (a batch fetched before the pause, a
// failed batch backing off and rebuilding its task) heartbeat explicitly through the payload's
// heartbeat(); an error there (REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION)
// ends the wait so kafkajs rejoins at once. A restore survives a rebalance that leaves its
// partitions here, is aborted when they move, and every task is rebuilt when the member id
// changed (the session expired: another member may have owned the partitions in between).
import { randomUUID } from 'node:crypto';
import type { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage, Producer, Transaction } from 'kafkajs';
import type { Logger, StreamMetrics } from '@tillwatch/telemetry';
import type { DeadLetter } from '@tillwatch/schemas';
import { isPoison, FatalError, RetriableError, type PoisonRecordError } from '../errors.js';
import { deadLetterMessage } from '../dead-letter.js';
import { sleep } from '../sleep.js';
import { CoPartitionedAssigner } from './copartitioned-assigner.js';
import { createConsumerLagMonitor, type ConsumerLagMonitor } from './lag-monitor.js';
import { MARKER_KEY, RestoreAbortedError, restoreChangelog } from './changelog.js';
import type { DecodedRecord, InputTopic, OutputMessage, Task } from './task.js';
import { appendRecords, detachPending, dropBefore, freshRecords, isCaughtUp, newInputBuffer, newPositions, pendingCount, type InputBuffer, type TaskPositions } from './align.js';
import { alignedStep } from './aligned-step.js';

export interface ProcessorMetrics extends StreamMetrics {
  txnLatency?: { observe(v: number): void };
  restoreSeconds?: { observe(v: number): void };
  restoreRecords?: { inc(v?: number): void };
  txnAborts?: { inc(labels: { reason_class: string }): void };
  producerReplacements?: { inc(): void };
  /** Every join of the consumer group: `first`, `rejoin` (same member id: a rebalance) or `new_member` (the member was evicted or restarted). */
  groupJoins?: { inc(labels: { kind: 'first' | 'rejoin' | 'new_member' }): void };
}

export interface TransactionalProcessorOptions {
  kafka: Kafka;
  groupId: string;
  transactionalIdPrefix: string;
  inputs: InputTopic[];
  changelogTopic: string;
  dlqTopic: string;
  /** Dead letters' stage is `<prefix>.decode` or `<prefix>.validate` (004_dead_letters.sql); default `detector`. */
  deadLetterStagePrefix?: string;
  /** Encodes a dead letter for the DLQ topic (Avro through the registry). */
  encodeDeadLetter(d: DeadLetter): Buffer;
  createTask(partition: number): Task;
  /**
   * Processes each task's inputs in record-time order across topics (align.ts): every input must
   * give `time(value)`. Records later than what another input, not caught up, may still deliver
   * wait in memory (up to MAX_BUFFERED per input) and are merged with that input's next batch in
   * one transaction (aligned-step.ts). Default off (fetch-batch order).
   */
  alignInputs?: boolean;
  metrics: ProcessorMetrics;
  logger: Logger;
  /** Wall-clock tick for quiet-partition timers; 0 disables. */
  tickIntervalMs?: number;
  /** Partitions processed at the same time (each in its own transaction). */
  concurrency?: number;
  /** kafkajs fetch long-poll when a partition is empty. */
  maxWaitTimeInMs?: number;
  /**
   * Group session timeout (default 30 s); the broker bounds it by group.min/max.session.timeout.ms
   * (6 s to 30 min by default). A killed member's partitions wait this long before the group
   * rebalances; heartbeats go out every min(1 s, a third of it).
   */
  sessionTimeoutMs?: number;
  /** Consumer lag poll interval (default 10 s, see lag-monitor.ts). */
  lagIntervalMs?: number;
  /** Changelog restore: progress log interval (default 5 s). */
  restoreProgressIntervalMs?: number;
  /** Test seam: awaited for every changelog record a restore applies (tests slow restores with it). Unset in production. */
  onRestoreRecord?: (partition: number, records: number) => void | Promise<void>;
  /** An error no retry can cure: the process should stop and exit non-zero (default: log it). */
  onFatal?: (error: Error) => void;
  now?: () => number;
}

/** One restore of one or more tasks (their changelog partitions are read by one restore consumer). */
interface RestoreRun {
  entries: TaskEntry[];
  abort: AbortController;
  done: Promise<void>;
}

/** tillwatch_dlq_records_total's labels of one dead letter. */
interface DlqLabels {
  topic: string;
  error_class: string;
}

interface TaskEntry {
  partition: number;
  producer: Producer;
  task: Task | undefined;
  /** The restore in flight for this task; its input partitions stay paused until it ends. */
  restoring: RestoreRun | undefined;
  lock: Promise<unknown>;
  lost: boolean;
  closed: boolean;
  /** The first restore attempt finished (successfully or not). */
  settled?: boolean;
  /** A transaction of this producer failed: it must be replaced before the next one (kafkajs does not recover a producer stuck in COMMITTING/ABORTING). */
  broken: boolean;
  /** Committed offset per input topic, read after fencing: records below it are already in the restored state. */
  committed: Map<string, bigint>;
  /** alignInputs: what the task knows of each input's position (reset with every restore). */
  positions?: TaskPositions;
  /** alignInputs: records fetched and not committed yet, per input (discarded, and fetched again, by every restore). */
  buffers?: Map<string, InputBuffer<KafkaMessage>>;
  /** alignInputs: inputs paused because their buffer is full (PAUSE_BUFFERED); a restore resumes them. */
  pausedFull?: Set<string>;
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

/** Records decoded and processed at a time within a fetched batch (see eachBatch). */
const PROCESS_CHUNK = 1_000;

/**
 * alignInputs: an input with this many records pending in memory (far ahead of another input) is
 * paused until its buffer drains below it, so that kafkajs does not keep fetching it.
 */
const PAUSE_BUFFERED = 10_000;

/**
 * alignInputs: a batch arriving while its input holds this many pending records (fetched before the
 * pause took effect) is not taken, nor resolved: kafkajs fetches it again later.
 */
const MAX_BUFFERED = 50_000;

/** A fetched record with its own copies of key, value and headers (not slices of the fetch response). */
const copyBytes = <T extends Buffer | string | null | undefined>(b: T): T => (Buffer.isBuffer(b) ? (Buffer.from(b) as T) : b);
function copyMessage(m: KafkaMessage): KafkaMessage {
  const headers: NonNullable<KafkaMessage['headers']> = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) headers[k] = Array.isArray(v) ? v.map((x) => copyBytes(x)) : copyBytes(v);
  // Mutating a shallow copy keeps whichever KafkaMessage variant m is (MessageSetEntry or RecordBatchEntry).
  const c = { ...m };
  c.key = copyBytes(m.key);
  c.value = copyBytes(m.value);
  c.headers = headers;
  return c;
}

/** How often a wait inside eachBatch asks for a heartbeat; kafkajs sends at most one per heartbeatInterval. */
const KEEPALIVE_CHECK_MS = 1_000;

/**
 * A batch still in flight after this long stops heartbeating (the member is then evicted and its
 * partitions move), as the Java client's max.poll.interval.ms bounds a stuck poll loop.
 */
const MAX_BATCH_KEEPALIVE_MS = 120_000;

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Heartbeats while a batch is processed and committed. kafkajs heartbeats only from its fetch
 * loop, which waits for every batch of a fetch to finish: one slow batch (a large fetch under a
 * loaded CPU, a transaction retrying CONCURRENT_TRANSACTIONS) would stop the heartbeats of the
 * whole member, and with a short session get it evicted while alive. Unlike whileHeartbeating, an
 * error does not end the work: the batch commits (or aborts) as it would, and the fetch loop's own
 * heartbeat after it meets the rebalance and rejoins, within the rebalance timeout.
 */
function keepAlive(heartbeat: () => Promise<void>): () => void {
  const started = performance.now();
  let sending = false;
  const timer = setInterval(() => {
    if (sending) return;
    if (performance.now() - started > MAX_BATCH_KEEPALIVE_MS) return clearInterval(timer);
    sending = true;
    heartbeat()
      .catch(() => undefined)
      .finally(() => (sending = false));
  }, KEEPALIVE_CHECK_MS);
  return () => clearInterval(timer);
}

/**
 * Awaits work while keeping the group membership alive through the eachBatch payload's
 * heartbeat(). A heartbeat error (the group is rebalancing, or this member is no longer known)
 * rejects at once: the caller leaves eachBatch so kafkajs rejoins within the rebalance timeout;
 * the work itself goes on (a restore is kept or aborted by the next assignment).
 */
async function whileHeartbeating<T>(work: Promise<T>, heartbeat: () => Promise<void>): Promise<T> {
  work.catch(() => undefined);
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const tick = new Promise<'tick'>((resolve) => (timer = setTimeout(() => resolve('tick'), KEEPALIVE_CHECK_MS)));
    try {
      const r = await Promise.race([work.then((value) => ({ value })), tick]);
      if (r !== 'tick') return r.value;
    } finally {
      clearTimeout(timer);
    }
    await heartbeat();
  }
}

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
  if (o.alignInputs) {
    for (const i of o.inputs) if (!i.time) throw new TypeError(`alignInputs: input ${i.topic} has no time(value)`);
  }
  let consumer: Consumer | undefined;
  let admin: Admin | undefined;
  let tickTimer: NodeJS.Timeout | undefined;
  let lag: ConsumerLagMonitor | undefined;
  let joined = false;
  let stopping = false;
  let memberId: string | undefined;
  let joins = 0;

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

  /**
   * Commits `messages` and `offsets` in one transaction. `deadLettered`: the labels of the dead letters
   * among the messages, counted in tillwatch_dlq_records_total once the transaction committed (a
   * batch retried after a failed commit builds its dead letters again: they count once).
   */
  async function commit(entry: TaskEntry, messages: OutputMessage[], offsets: Array<{ topic: string; partition: number; offset: string }> = [], deadLettered: readonly DlqLabels[] = []): Promise<void> {
    const started = performance.now();
    const txn = await entry.producer.transaction();
    // The offsets go out while the outputs are sent, not after them: AddOffsetsToTxn and
    // TxnOffsetCommit need nothing from the produce, and the transaction coordinator takes both kinds
    // of addition in any order (KIP-98); EndTxn waits for both. Saves their round trips after the
    // send (load-tests/README.md, round 3 (lat): p50 5.8-8.1 -> 1.2-1.7 ms).
    const offsetsSent = offsets.length > 0 ? sendOffsets(txn, offsets) : undefined;
    offsetsSent?.catch(() => undefined);
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
      const sent = performance.now();
      o.metrics.batchLatency.observe({ stage: 'txn_send' }, (sent - started) / 1000);
      await offsetsSent;
      // What the offsets took beyond the outputs (0 when they were done first).
      const ended = performance.now();
      o.metrics.batchLatency.observe({ stage: 'txn_offsets' }, (ended - sent) / 1000);
      await txn.commit();
      o.metrics.batchLatency.observe({ stage: 'txn_end' }, (performance.now() - ended) / 1000);
    } catch (e) {
      await offsetsSent?.catch(() => undefined);
      await txn.abort().catch(() => undefined);
      o.metrics.txnAborts?.inc({ reason_class: classifyError(e) });
      entry.broken = true;
      throw e;
    }
    o.metrics.txnLatency?.observe((performance.now() - started) / 1000);
    for (const l of deadLettered) o.metrics.dlq.inc(l);
  }

  /**
   * sendOffsets, retried on CONCURRENT_TRANSACTIONS: the broker may still be writing the previous
   * transaction's markers (kafkajs retries that for sendBatch's AddPartitionsToTxn, not for
   * AddOffsetsToTxn, which may now reach the coordinator first). Adding the offsets again is harmless.
   */
  async function sendOffsets(txn: Transaction, list: Array<{ topic: string; partition: number; offset: string }>): Promise<void> {
    const topics = list.map((x) => ({ topic: x.topic, partitions: [{ partition: x.partition, offset: x.offset }] }));
    for (let attempt = 0; ; attempt++) {
      try {
        await txn.sendOffsets({ consumerGroupId: o.groupId, topics });
        return;
      } catch (e) {
        if (kafkaType(e) !== 'CONCURRENT_TRANSACTIONS' || attempt >= 10) throw e;
        await sleep(Math.min(500, 10 * 2 ** attempt));
      }
    }
  }

  /** Fences the previous owner, commits a marker, reads the committed changelog up to it. */
  async function restore(entries: TaskEntry[], signal: AbortSignal): Promise<void> {
    if (entries.length === 0) return;
    // The restored state is the committed one: buffered records are fetched again from there.
    for (const e of entries) discardBuffers(e);
    for (const e of entries) {
      if (e.broken) {
        // A new producer with the same transactional.id: its InitProducerId completes or aborts
        // whatever the old one left open.
        await e.producer.disconnect().catch(() => undefined);
        e.producer = newProducer(e.partition);
        e.broken = false;
        o.metrics.producerReplacements?.inc();
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
    if (o.alignInputs) {
      // An input no batch has come from yet is caught up when nothing lies past the committed
      // offset (or past the log start when nothing was committed): an empty topic never blocks.
      const ends = new Map<string, Array<{ partition: number; high: string; low: string }>>();
      for (const i of o.inputs) ends.set(i.topic, await admin!.fetchTopicOffsets(i.topic));
      for (const e of entries) {
        e.positions = newPositions(o.inputs.map((i) => i.topic), (topic) => {
          const p = ends.get(topic)?.find((x) => x.partition === e.partition);
          if (!p) return true;
          // A committed offset below the log start (retention removed what it pointed at) counts from the log start.
          const from = e.committed.get(topic) ?? BigInt(p.low);
          return isCaughtUp(from > BigInt(p.low) ? from : BigInt(p.low), BigInt(p.high));
        });
        e.buffers = new Map(o.inputs.map((i) => [i.topic, newInputBuffer<KafkaMessage>(e.positions!.get(i.topic)!.caughtUp)]));
      }
    }
    o.logger.info({ partitions: entries.map((e) => e.partition) }, 'restoring tasks from changelog');
    const results = await restoreChangelog({
      kafka: o.kafka,
      topic: o.changelogTopic,
      markers,
      groupPrefix: o.groupId,
      logger: o.logger,
      signal,
      // Counted as read, so a long restore shows its progress in the metric too.
      onRecords: (n) => o.metrics.restoreRecords?.inc(n),
      ...(o.restoreProgressIntervalMs !== undefined ? { progressIntervalMs: o.restoreProgressIntervalMs } : {}),
      ...(o.onRestoreRecord ? { onRecord: o.onRestoreRecord } : {}),
    });
    for (const e of entries) {
      // Revoked while a restore shared with other tasks went on: nothing to build.
      if (e.closed || e.lost) continue;
      const r = results.get(e.partition)!;
      const task = o.createTask(e.partition);
      task.restore(r.entries);
      e.task = task;
      o.metrics.restoreSeconds?.observe(r.ms / 1000);
      o.logger.info({ partition: e.partition, keys: r.entries.size, records: r.records, bytes: r.bytes, ms: Math.round(r.ms) }, 'task restored from changelog');
    }
  }

  /** Pauses (or resumes) fetching of the tasks' partitions of every input topic. */
  function setPaused(entries: TaskEntry[], paused: boolean): void {
    if (!consumer || entries.length === 0) return;
    const partitions = entries.map((e) => e.partition);
    const topicPartitions = o.inputs.map((i) => ({ topic: i.topic, partitions }));
    try {
      if (paused) consumer.pause(topicPartitions);
      else consumer.resume(topicPartitions);
    } catch (e) {
      o.logger.warn({ err: e, partitions, paused }, 'could not change paused partitions');
    }
  }

  /**
   * Restores the tasks that have no state and no restore in flight, with their input partitions
   * paused until they have state; resolves when every given task's restore has ended.
   */
  function ensureRestored(entries: TaskEntry[]): Promise<void> {
    const todo = entries.filter((e) => !e.task && !e.restoring && !e.closed && !e.lost);
    if (todo.length > 0) {
      const run: RestoreRun = { entries: todo, abort: new AbortController(), done: Promise.resolve() };
      setPaused(todo, true);
      for (const e of todo) e.restoring = run;
      run.done = restoreWithRetry(todo, run.abort.signal).finally(() => {
        for (const e of todo) {
          if (e.restoring === run) e.restoring = undefined;
          e.settled = true;
          // A newer entry for the same partition manages its own pause.
          if (e.task && !e.closed && !e.lost && tasks.get(e.partition) === e) setPaused([e], false);
        }
      });
      run.done.catch((err: unknown) => o.logger.error({ err }, 'restore failed'));
    }
    return Promise.all(entries.map((e) => e.restoring?.done)).then(() => undefined);
  }

  /** Stops a restore once none of its tasks is still wanted here. */
  function cancelRestore(entry: TaskEntry): void {
    const run = entry.restoring;
    if (run && run.entries.every((e) => e.closed || e.lost)) run.abort.abort();
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
    return { partition, producer: newProducer(partition), task: undefined, restoring: undefined, lock: Promise.resolve(), lost: false, closed: false, broken: false, committed: new Map() };
  }

  async function closeEntry(entry: TaskEntry): Promise<void> {
    entry.closed = true;
    cancelRestore(entry);
    await withLock(entry, async () => {
      await entry.producer.disconnect().catch(() => undefined);
    });
  }

  /** membershipLost: this member joined under a new member id (its session expired, or the consumer restarted). */
  function onAssignment(assignment: Record<string, number[]>, membershipLost: boolean): void {
    const wanted = new Set<number>();
    for (const [topic, ps] of Object.entries(assignment)) if (inputs.has(topic)) for (const p of ps) wanted.add(p);
    const revoked: TaskEntry[] = [];
    if (membershipLost && tasks.size > 0) o.logger.warn({ partitions: [...tasks.keys()] }, 'rejoined under a new member id: other members may have owned these tasks meanwhile; rebuilding every task');
    for (const [p, entry] of tasks) {
      if (membershipLost) entry.lost = true;
      if (!wanted.has(p) || entry.lost || (entry.task === undefined && entry.settled && !entry.restoring)) {
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
    // Kept tasks still restoring stay paused (a consumer restarted by kafkajs starts unpaused).
    setPaused([...tasks.values()].filter((e) => e.restoring), true);
    if (fresh.length > 0) void ensureRestored(fresh).catch(() => undefined);
  }

  async function restoreWithRetry(entries: TaskEntry[], signal: AbortSignal): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const live = entries.filter((e) => !e.closed && !e.lost);
      if (stopping || signal.aborted || live.length === 0) return;
      try {
        await restore(live, signal);
        return;
      } catch (e) {
        // Revoked (or stopping) while restoring: not a failure.
        if (signal.aborted || e instanceof RestoreAbortedError) return;
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
        await sleep(wait, signal);
      }
    }
  }

  /** A poison record's dead letter; its metric labels go to `labels`, counted when its transaction commits (commit). */
  function deadLetter(msg: EachBatchPayload['batch']['messages'][number], topic: string, partition: number, err: PoisonRecordError, labels: DlqLabels[]): OutputMessage {
    labels.push({ topic, error_class: err.errorClass });
    const source = { topic, partition, offset: msg.offset, key: msg.key ?? null, value: msg.value ?? null };
    return deadLetterMessage(o.dlqTopic, (d) => o.encodeDeadLetter(d), source, { errorClass: err.errorClass, reason: err.message, stage: `${o.deadLetterStagePrefix ?? 'detector'}.${err.stage}` }, now());
  }

  /** alignInputs: drops a task's buffered records; kafkajs fetches them again from the first one not committed. */
  function discardBuffers(entry: TaskEntry): void {
    const buffers = entry.buffers;
    entry.buffers = undefined;
    // The restore that follows pauses every input of the task and resumes them when it ends.
    entry.pausedFull = undefined;
    if (!buffers) return;
    for (const [topic, b] of buffers) {
      if (pendingCount(b) === 0) continue;
      try {
        // Batches of this partition fetched before the seek are stale from now on (isStale), and dropped.
        consumer?.seek({ topic, partition: entry.partition, offset: b.records[b.start]!.offset });
      } catch (e) {
        // Not running any more: the next assignment fetches from the committed offsets anyway.
        o.logger.warn({ err: e, topic, partition: entry.partition }, 'could not seek back to buffered records');
      }
    }
  }

  /**
   * alignInputs: one step of the task (aligned-step.ts): its buffered records as far as the bound
   * allows, in time order across inputs, in one transaction committing every input's offset.
   * False when nothing could be taken (no transaction).
   */
  async function stepAligned(entry: TaskEntry): Promise<boolean> {
    const buffers = entry.buffers!;
    const deadLettered: DlqLabels[] = [];
    const step = await alignedStep({
      task: entry.task!,
      partition: entry.partition,
      inputs,
      buffers,
      positions: entry.positions!,
      wallMs: now(),
      chunk: PROCESS_CHUNK,
      deadLetter: (m, topic, err) => deadLetter(m, topic, entry.partition, err, deadLettered),
      gone: () => entry.closed || entry.lost,
    });
    if (!step) return false;
    for (const [key, value] of entry.task!.takeChanges()) step.messages.push({ topic: o.changelogTopic, key, value, partition: entry.partition });
    await commit(entry, step.messages, step.offsets.map((x) => ({ topic: x.topic, partition: entry.partition, offset: x.offset.toString() })), deadLettered);
    for (const [topic, at] of step.taken) dropBefore(buffers.get(topic)!, at);
    pauseFull(entry);
    for (const x of step.offsets) entry.committed.set(x.topic, x.offset);
    for (const [topic, n] of step.decoded) o.metrics.decoded.inc({ topic }, n);
    for (const f of step.done) f();
    return true;
  }

  /** alignInputs: pauses the inputs whose buffer is full, resumes those drained below PAUSE_BUFFERED. */
  function pauseFull(entry: TaskEntry): void {
    if (!consumer || !entry.buffers || !entry.task || entry.closed || entry.lost) return;
    const paused = (entry.pausedFull ??= new Set());
    for (const [topic, b] of entry.buffers) {
      const full = pendingCount(b) >= PAUSE_BUFFERED;
      if (full === paused.has(topic)) continue;
      try {
        if (full) consumer.pause([{ topic, partitions: [entry.partition] }]);
        else consumer.resume([{ topic, partitions: [entry.partition] }]);
        if (full) paused.add(topic);
        else paused.delete(topic);
      } catch (e) {
        o.logger.warn({ err: e, topic, partition: entry.partition, full }, 'could not pause or resume a buffered input');
      }
    }
  }

  /**
   * alignInputs: a fetched batch goes into its input's buffer (resolved: kafkajs fetches on after
   * it), then the task takes what it can. A batch above MAX_BUFFERED is left unresolved (fetched
   * again later); a stale one (fetched before a seek back) is dropped. True when a transaction committed.
   */
  async function takeAligned(entry: TaskEntry, payload: EachBatchPayload, messages: KafkaMessage[]): Promise<boolean> {
    const { batch, isStale, resolveOffset } = payload;
    const buffer = entry.buffers?.get(batch.topic);
    if (!buffer || isStale()) return false;
    if (pendingCount(buffer) < MAX_BUFFERED) {
      const input = inputs.get(batch.topic)!;
      // Records fetched again (kafkajs starts from the committed offset after a rebalance) are already buffered.
      const fresh = freshRecords(buffer, messages);
      if (fresh.length > 0 && input.prefetch) {
        await input.prefetch(fresh.map((m) => m.value));
        // The prefetch awaited: the task may have been rebuilt meanwhile (its buffers discarded).
        if (entry.buffers?.get(batch.topic) !== buffer || isStale()) return false;
      }
      // Records still waiting from an earlier fetch of this input get their own bytes before this
      // fetch's join them (align.ts, detachPending); the tick copies those that wait across it, so a
      // response outlives its step by at most a tick interval. Not every record left after a step:
      // with heartbeats, whose fetch spans more time than the transactions', a copy per heartbeat
      // made the collector's scavenges about +3 µs per transaction (issue 10's load check).
      if (fresh.length > 0) detachPending(buffer, copyMessage);
      appendRecords(buffer, fresh);
      buffer.fetchedToEnd = isCaughtUp(BigInt(batch.lastOffset()) + 1n, BigInt(batch.highWatermark));
      resolveOffset(batch.messages[batch.messages.length - 1]!.offset);
    }
    const stepped = await stepAligned(entry);
    if (!stepped) pauseFull(entry);
    return stepped;
  }

  /**
   * A transaction outside any batch (a tick, an aligned step) failed: the task's state is dropped and
   * rebuilt in the background, its partitions paused; a fenced task is lost, a fatal error stops all.
   */
  function taskFailed(entry: TaskEntry, e: unknown, what: string): void {
    o.logger.warn({ err: e, partition: entry.partition }, `${what} failed; restoring task`);
    entry.task = undefined;
    const kind = classifyError(e);
    if (kind === 'fenced') entry.lost = true;
    else if (kind === 'fatal') fatal(e as Error);
    else void ensureRestored([entry]).catch(() => undefined);
  }

  /** alignInputs: a step outside any batch (an input found caught up by a batch with no records), under the task's lock. */
  function stepAlignedLater(entry: TaskEntry): void {
    void withLock(entry, async () => {
      if (!entry.task || entry.closed || entry.lost || !entry.buffers) return;
      try {
        await stepAligned(entry);
      } catch (e) {
        // Its restore fetches the buffered records again.
        taskFailed(entry, e, 'aligned step');
      }
    }).catch((e: unknown) => o.logger.error({ err: e }, 'aligned step failed'));
  }

  async function eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat, isRunning, isStale, resolveOffset } = payload;
    if (batch.messages.length === 0) return;
    const entry = tasks.get(batch.partition);
    if (!entry) throw new Error(`batch for unassigned partition ${batch.topic}-${batch.partition}`);
    // A task without state has its partitions paused, so this is rare (a batch fetched before
    // the pause): wait for the restore, heartbeating.
    if (!entry.task) await whileHeartbeating(ensureRestored([entry]).catch(() => undefined), heartbeat);
    const input = inputs.get(batch.topic)!;
    const last = batch.messages[batch.messages.length - 1]!.offset;
    o.metrics.consumed.inc({ topic: batch.topic }, batch.messages.length);
    // From the first record's producer timestamp (CreateTime) to here: broker, fetch wait and the
    // wait for the previous fetch's batches (kafkajs fetches again only when all are done).
    const firstTs = Number(batch.messages[0]!.timestamp);
    if (firstTs > 0) o.metrics.batchLatency.observe({ stage: 'queued' }, Math.max(0, Date.now() - firstTs) / 1000);
    const started = performance.now();
    const stopKeepAlive = keepAlive(heartbeat);

    await withLock(entry, async () => {
      for (let attempt = 0; ; attempt++) {
        if (entry.closed || entry.lost || !isRunning() || isStale()) return;
        // A task without state (its restore failed, or a batch or a tick failed): rebuild it before anything else.
        if (!entry.task) {
          await whileHeartbeating(ensureRestored([entry]).catch(() => undefined), heartbeat);
          if (!entry.task) return;
        }
        // Records below the committed offset are already in the restored state.
        // Offsets ascend within a batch: only a batch that starts below the committed offset is filtered.
        const from = entry.committed.get(batch.topic) ?? -1n;
        const messages = from < 0n || BigInt(batch.messages[0]!.offset) >= from ? batch.messages : batch.messages.filter((m) => BigInt(m.offset) >= from);
        if (messages.length === 0 && !o.alignInputs) {
          resolveOffset(last);
          return;
        }
        try {
          if (o.alignInputs) {
            if (await takeAligned(entry, payload, messages)) o.metrics.batchLatency.observe({ stage: 'process' }, (performance.now() - started) / 1000);
            return;
          }
          if (input.prefetch) await input.prefetch(messages.map((m) => m.value));
          // Decoded and processed PROCESS_CHUNK records at a time (arrival order, one transaction
          // for the whole batch): a fetched batch holds up to tens of thousands of records, and
          // their decoded values die young instead of all surviving to the end of the batch.
          const wall = now();
          const out: OutputMessage[] = [];
          const dead: OutputMessage[] = [];
          const deadLettered: DlqLabels[] = [];
          const done: Array<() => void> = [];
          let decoded = 0;
          for (let i = 0; i < messages.length; i += PROCESS_CHUNK) {
            const records: DecodedRecord[] = [];
            for (let j = i, end = Math.min(messages.length, i + PROCESS_CHUNK); j < end; j++) {
              const m = messages[j]!;
              let value: unknown;
              try {
                value = input.decode(m.value, batch.partition);
              } catch (e) {
                if (!isPoison(e)) throw e;
                dead.push(deadLetter(m, batch.topic, batch.partition, e, deadLettered));
                continue;
              }
              records.push({ topic: batch.topic, partition: batch.partition, offset: m.offset, key: m.key, value });
            }
            decoded += records.length;
            const result = entry.task!.process(batch.topic, records, wall);
            for (const m of result.messages) out.push(m);
            if (result.committed) done.push(result.committed);
            // Between chunks the event loop runs the keep-alive timer (and other partitions' I/O).
            if (i + PROCESS_CHUNK < messages.length) {
              await yieldToLoop();
              // Revoked meanwhile: the task is dropped with its uncommitted state; its next owner restores.
              if (entry.closed || entry.lost) return;
            }
          }
          for (const m of dead) out.push(m);
          for (const [key, value] of entry.task!.takeChanges()) out.push({ topic: o.changelogTopic, key, value, partition: batch.partition });
          const next = BigInt(last) + 1n;
          o.metrics.batchLatency.observe({ stage: 'compute' }, (performance.now() - started) / 1000);
          await commit(entry, out, [{ topic: batch.topic, partition: batch.partition, offset: next.toString() }], deadLettered);
          entry.committed.set(batch.topic, next);
          resolveOffset(last);
          o.metrics.decoded.inc({ topic: batch.topic }, decoded);
          o.metrics.batchLatency.observe({ stage: 'process' }, (performance.now() - started) / 1000);
          for (const f of done) f();
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
          await whileHeartbeating(sleep(wait), heartbeat);
          // The next attempt rebuilds the task first (partitions paused meanwhile).
        }
      }
    }).finally(stopKeepAlive);
    await heartbeat().catch(() => undefined);
  }

  async function tick(): Promise<void> {
    for (const entry of tasks.values()) {
      if (!entry.task || entry.closed || entry.lost) continue;
      await withLock(entry, async () => {
        if (!entry.task || entry.closed) return;
        // Records still waiting since before this tick get their own bytes (align.ts, detachPending):
        // an input that gets no next fetch (paused full, or nothing new on its partition) would
        // otherwise keep its last fetch response, other partitions' records included, alive.
        if (entry.buffers) for (const b of entry.buffers.values()) detachPending(b, copyMessage);
        try {
          // Inside the try: a task that throws here has moved its state past its changelog (the
          // changes it took are lost with the exception), so it is rebuilt like a failed transaction.
          const result = entry.task.tick(now());
          const changes = entry.task.takeChanges();
          if (result.messages.length === 0 && changes.length === 0) return;
          const messages = [...result.messages, ...changes.map(([key, value]): OutputMessage => ({ topic: o.changelogTopic, key, value, partition: entry.partition }))];
          await commit(entry, messages);
          result.committed?.();
        } catch (e) {
          // A batch of this task waits for the rebuild, heartbeating.
          taskFailed(entry, e, 'tick transaction');
        }
      }).catch((e: unknown) => o.logger.error({ err: e }, 'tick failed'));
    }
  }

  return {
    async start() {
      admin = o.kafka.admin();
      await admin.connect();
      lag = createConsumerLagMonitor({
        admin,
        groupId: o.groupId,
        owned: () => new Map(o.inputs.map((i) => [i.topic, [...tasks.keys()]])),
        gauge: o.metrics.consumerLag,
        committedGauge: o.metrics.committedOffset,
        logger: o.logger,
        ...(o.lagIntervalMs !== undefined ? { intervalMs: o.lagIntervalMs } : {}),
      });
      const sessionTimeout = o.sessionTimeoutMs ?? 30_000;
      consumer = o.kafka.consumer({
        groupId: o.groupId,
        readUncommitted: false,
        partitionAssigners: [CoPartitionedAssigner],
        sessionTimeout,
        // About a third of the session, as kafkajs and the Java client recommend.
        // At most 1 s, so a survivor learns of a rebalance (a dead member's session expired) within
        // about a second; kafkajs sends one only when its loop or a keep-alive asks for it.
        heartbeatInterval: Math.min(1_000, Math.floor(sessionTimeout / 3)),
        maxWaitTimeInMs: o.maxWaitTimeInMs ?? 100,
        maxBytesPerPartition: 4 * 1024 * 1024,
      });
      // Called synchronously by kafkajs after SyncGroup, before its fetch loop starts: the pause of
      // restoring partitions is in place before the first fetch.
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        joined = true;
        joins++;
        const previous = memberId;
        memberId = e.payload.memberId;
        o.metrics.groupJoins?.inc({ kind: previous === undefined ? 'first' : previous === memberId ? 'rejoin' : 'new_member' });
        o.logger.info({ groupId: o.groupId, memberId, joins, assignment: e.payload.memberAssignment }, 'joined consumer group');
        try {
          onAssignment(e.payload.memberAssignment, previous !== undefined && previous !== memberId);
          lag?.refresh();
        } catch (err) {
          o.logger.error({ err }, 'assignment handling failed');
        }
      });
      // A fetched batch with nothing to process (only transaction markers or aborted records) never
      // reaches eachBatch; kafkajs resolves it itself. Its position may be what makes an input caught up.
      // Records of the other inputs may be waiting in memory for exactly that.
      if (o.alignInputs) {
        consumer.on(consumer.events.START_BATCH_PROCESS, (e) => {
          const b = e.payload;
          if (b.batchSize !== 0) return;
          const entry = tasks.get(b.partition);
          const buffer = entry?.buffers?.get(b.topic);
          if (!entry || !buffer) return;
          const was = buffer.fetchedToEnd;
          buffer.fetchedToEnd = isCaughtUp(BigInt(b.lastOffset) + 1n, BigInt(b.highWatermark));
          if (!was && buffer.fetchedToEnd && [...entry.buffers!.values()].some((x) => pendingCount(x) > 0)) stepAlignedLater(entry);
        });
      }
      consumer.on(consumer.events.REBALANCING, (e) => o.logger.info({ groupId: e.payload.groupId, memberId: e.payload.memberId }, 'consumer group rebalancing'));
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
      lag.start();
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
      // A batch waiting for a restore must not hold up the leave.
      for (const e of tasks.values()) e.restoring?.abort.abort();
      // kafkajs finishes the batch in flight (our transaction commits or aborts) before leaving.
      await consumer?.disconnect();
      await Promise.all([...tasks.values()].map(closeEntry));
      tasks.clear();
      await lag?.stop();
      await admin?.disconnect();
    },
    ready: () => joined && [...tasks.values()].every((t) => t.task !== undefined),
    assignedPartitions: () => [...tasks.keys()].sort((a, b) => a - b),
  };
}
