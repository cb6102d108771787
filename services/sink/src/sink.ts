// The sink: Kafka (read_committed) → ClickHouse, in size- and time-bounded batches, committing
// consumed offsets only after every row up to them is written — or, for a row whose values
// ClickHouse rejects, sent to the dead-letter topic. Replays are harmless: tables are
// ReplacingMergeTree keyed by the contract's ids and each batch carries an insert deduplication
// token, so at-least-once delivery becomes effectively-once rows. A statement ClickHouse will not
// run at all (unknown table, auth, ...) stops the sink after a few attempts, offsets uncommitted
// (flush.ts).
import type { Admin, Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import { AvroSchemas, DEFAULT_MAX_CLOCK_SKEW_MS, Topics, validateTransaction, valueSubject, type Action, type ActionDecision, type Alert, type IncidentMembership, type AlertUpdate, type DeadLetter, type RefundReason, type Transaction } from '@tillwatch/schemas';
import { createBatchWriter, RowValueError, toActionDecisionRow, toActionRow, toIncidentMemberRow, toAlertRow, toAlertUpdateRow, toDeadLetterRow, toRefundReasonRow, toTransactionRow, type BatchWriter, type ClickHouse, type RejectedRow } from '@tillwatch/clickhouse';
import { createAvroSerde, createConsumerLagMonitor, deadLetterMessage, FatalError, isPoison, sleep, toDeadLetter, type AvroSerde, type DeadLetterFailure, type DeadLetterSource, type OutputMessage, type RegistryClient } from '@tillwatch/stream';
import type { Logger, SinkMetrics } from '@tillwatch/telemetry';
import { defaultRulesConfig } from '@tillwatch/rules';
import { startLiveRules, type LiveRules, type RulesMetrics } from '@tillwatch/rules-live';
import { DEFAULT_FLUSH_RETRY, FatalWriteError, flushWithRetry } from './flush.js';

export interface SinkTopics {
  transactions: string;
  alerts: string;
  /** Alerts of rules in shadow mode -> alerts_shadow (same columns as alerts). */
  shadowAlerts: string;
  freezeActions: string;
  notifyActions: string;
  alertUpdates: string;
  refundReasons: string;
  /** The action governor's decisions (second stage) -> action_decisions. */
  actionDecisions: string;
  /** Which per-terminal alerts belong to which fleet incident (second stage) -> incident_members. */
  incidentMembers: string;
  dlq: string;
}

export interface SinkOptions {
  kafka: Kafka;
  registry: RegistryClient;
  ch: ClickHouse;
  metrics: SinkMetrics;
  logger: Logger;
  groupId?: string;
  topics?: Partial<SinkTopics>;
  /**
   * The detector's engine.max_clock_skew (rules file): the sink skips exactly the transactions the
   * detector dead-letters, so it must validate with the same bound. Default 1 h, as the rules.
   * With liveRules, the bound while pos.rules.v1 holds no valid document.
   */
  maxClockSkewMs?: number;
  /**
   * Follow the rules topic (pos.rules.v1) as the detector does: the bound is the engine.max_clock_skew
   * of the version in force when the sink reads the record. The detector judged the record by the
   * version in force when it processed it, so around a change of the bound the two agree only as far
   * as they read the record at about the same time: a transaction whose skew lies between the old and
   * the new bound, read by a sink that lags the detector (a backlog, a replay after a ClickHouse
   * outage) across the change, may be stored though dead-lettered, or skipped though processed.
   * `dead_letters` (from pos.dlq.v1) holds exactly what the detector refused. (services/sink/README.md)
   */
  liveRules?: { topic: string; metrics?: RulesMetrics };
  /** Flush when this many rows are buffered across tables. */
  maxRows?: number;
  /** Flush at least this often while rows are buffered. */
  maxDelayMs?: number;
  /**
   * Attempts a flush gets while ClickHouse rejects the statement itself (unknown table, missing
   * column, authentication, syntax) before the sink gives up; see DEFAULT_FLUSH_RETRY.
   */
  fatalAttempts?: number;
  /**
   * Called once when the sink cannot continue (a FatalWriteError, already logged). The sink has
   * stopped fetching and committed nothing for the rows it could not write; the owner calls stop()
   * and exits non-zero, as for the detector's onFatal.
   */
  onFatal?: (error: FatalError) => void;
  /**
   * How long stop() keeps trying to write what is buffered while ClickHouse is unavailable before it
   * leaves without writing it (offsets of those rows stay uncommitted: the next owner reads them
   * again). Default 20 s, inside a 30 s termination grace period.
   */
  stopTimeoutMs?: number;
}

export interface Sink {
  start(): Promise<void>;
  /**
   * Flushes what is buffered, commits, leaves the group. After a fatal error it only leaves the
   * group: nothing more is written or committed. Idempotent.
   */
  stop(): Promise<void>;
  /** Member of the group and not failed. */
  ready(): boolean;
  /** Rows buffered and not yet written. */
  pending(): number;
}

type Route = { table: string; serde: AvroSerde<unknown>; toRow: (v: unknown) => object };

/** Stage of the dead letters for rows that could not be written (ClickHouse or the row mapper refused a value). */
export const SINK_WRITE_STAGE = 'sink.write';
/** error_class of a row ClickHouse rejected for its data (ClickHouseDataError); the reason carries code and message. */
export const CLICKHOUSE_REJECTED = 'ClickHouseRejected';
/** error_class of a row whose value its column cannot hold, refused by the row mapper before the insert (RowValueError). */
export const VALUE_OUT_OF_COLUMN_RANGE = 'ValueOutOfColumnRange';

/** A row that cannot be written, with what the dead letter and the metric say about it. */
export interface UnwritableRow {
  source: DeadLetterSource;
  table: string;
  errorClass: string;
  /** Metric label: the ClickHouse error name, or VALUE_OUT_OF_COLUMN_RANGE. */
  reasonClass: string;
  reason: string;
}

/** What the writer's bisection found, as unwritable rows (pure; the sink sends them). */
export function unwritableRows(rejected: readonly RejectedRow<object, DeadLetterSource>[], table: string): UnwritableRow[] {
  return rejected.map((r) => {
    // Every row the sink buffers carries its source; a row without one is a bug, not data.
    if (!r.meta) throw new Error(`rejected ${table} row has no source coordinates`);
    return { source: r.meta, table, errorClass: CLICKHOUSE_REJECTED, reasonClass: r.error.type ?? `CODE_${r.error.code}`, reason: r.error.message };
  });
}

/** stop() gave up writing what was buffered (ClickHouse stayed unavailable past stopTimeoutMs). */
class FlushAbandoned extends Error {
  override name = 'FlushAbandoned';
}

export function createSink(o: SinkOptions): Sink {
  const topics: SinkTopics = {
    transactions: o.topics?.transactions ?? Topics.transactions,
    alerts: o.topics?.alerts ?? Topics.alerts,
    shadowAlerts: o.topics?.shadowAlerts ?? Topics.shadowAlerts,
    freezeActions: o.topics?.freezeActions ?? Topics.freezeActions,
    notifyActions: o.topics?.notifyActions ?? Topics.notifyActions,
    alertUpdates: o.topics?.alertUpdates ?? Topics.alertUpdates,
    refundReasons: o.topics?.refundReasons ?? Topics.refundReasons,
    actionDecisions: o.topics?.actionDecisions ?? Topics.actionDecisions,
    incidentMembers: o.topics?.incidentMembers ?? Topics.incidentMembers,
    dlq: o.topics?.dlq ?? Topics.dlq,
  };
  const groupId = o.groupId ?? 'tillwatch-sink';
  const maxRows = o.maxRows ?? 5000;
  const maxDelayMs = o.maxDelayMs ?? 1000;
  const stopTimeoutMs = o.stopTimeoutMs ?? 20_000;
  const retryPolicy = { ...DEFAULT_FLUSH_RETRY, ...(o.fatalAttempts !== undefined ? { fatalAttempts: o.fatalAttempts } : {}) };
  const serde = <T>(topic: string, schema: object) => createAvroSerde<T>(o.registry, valueSubject(topic), schema) as AvroSerde<unknown>;
  // Decodes the DLQ topic (stored in dead_letters) and encodes the sink's own dead letters.
  const dlqSerde = createAvroSerde<DeadLetter>(o.registry, valueSubject(topics.dlq), AvroSchemas.deadLetter);

  let producer: Producer | undefined;

  /**
   * Makes unwritable rows durable on the DLQ topic (acks=all) — the same dead-letter records the
   * detector publishes — before their offsets may be committed. A row read FROM the DLQ topic is
   * not sent back to it (that would loop): it already is a dead letter, and stays on that topic.
   * Throws if Kafka does not take them; the caller backs off and tries again (duplicates collapse
   * in dead_letters, keyed by source coordinates and stage).
   */
  const sendDeadLetters = async (rows: readonly UnwritableRow[]): Promise<void> => {
    const failedAt = Date.now();
    const messages: OutputMessage[] = [];
    for (const r of rows) {
      const failure: DeadLetterFailure = { errorClass: r.errorClass, reason: r.reason, stage: SINK_WRITE_STAGE };
      if (r.source.topic === topics.dlq) {
        o.logger.error({ table: r.table, partition: r.source.partition, offset: r.source.offset, reason: r.reason }, 'dead letter cannot be stored in ClickHouse; it stays on the DLQ topic only');
        continue;
      }
      messages.push(deadLetterMessage(topics.dlq, (d) => dlqSerde.encode(d), r.source, failure, failedAt));
    }
    if (messages.length > 0) {
      if (!producer) throw new Error('sink producer not connected');
      await producer.send({ topic: topics.dlq, acks: -1, messages: messages.map((m) => ({ key: m.key, value: m.value })) });
    }
    for (const r of rows) {
      o.metrics.rowsDeadLettered.inc({ table: r.table, reason_class: r.reasonClass });
      if (r.source.topic !== topics.dlq) o.metrics.dlq.inc({ topic: r.source.topic, error_class: r.errorClass });
      o.logger.warn({ table: r.table, topic: r.source.topic, partition: r.source.partition, offset: r.source.offset, error_class: r.errorClass, reason: r.reason }, 'row rejected; sent to the DLQ');
    }
  };

  const writers = new Map<string, BatchWriter<object, DeadLetterSource>>();
  const writer = (table: string): BatchWriter<object, DeadLetterSource> => {
    let w = writers.get(table);
    if (!w) {
      // Flushing is driven here (offsets are committed after all tables flush), so the writer's own
      // triggers are set out of reach.
      w = createBatchWriter<object, DeadLetterSource>({
        ch: o.ch,
        table,
        maxRows: Number.MAX_SAFE_INTEGER,
        maxDelayMs: 2 ** 31 - 1,
        onFlush: (i) => {
          o.metrics.rowsWritten.inc({ table: i.table }, i.rows);
          o.metrics.insertLatency.observe({ table: i.table }, i.durationMs / 1000);
        },
        // ClickHouse refused values of the batch: the writer has written every other row and hands
        // over the ones rejected on their own; the batch is done once they are on the DLQ topic.
        onRejected: (rejected, t) => sendDeadLetters(unwritableRows(rejected, t)),
      });
      writers.set(table, w);
    }
    return w;
  };

  const fallbackSkew = o.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
  let live: LiveRules | undefined;
  const routes = new Map<string, Route>([
    [topics.transactions, { table: 'transactions', serde: serde<Transaction>(topics.transactions, AvroSchemas.transaction), toRow: (v) => toTransactionRow(validateTransaction(v, { maxClockSkewMs: live ? live.current().engine.max_clock_skew : fallbackSkew, nowMs: Date.now() })) }],
    [topics.alerts, { table: 'alerts', serde: serde<Alert>(topics.alerts, AvroSchemas.alert), toRow: (v) => toAlertRow(v as Alert) }],
    [topics.shadowAlerts, { table: 'alerts_shadow', serde: serde<Alert>(topics.shadowAlerts, AvroSchemas.alert), toRow: (v) => toAlertRow(v as Alert) }],
    [topics.freezeActions, { table: 'actions', serde: serde<Action>(topics.freezeActions, AvroSchemas.action), toRow: (v) => toActionRow(v as Action) }],
    [topics.notifyActions, { table: 'actions', serde: serde<Action>(topics.notifyActions, AvroSchemas.action), toRow: (v) => toActionRow(v as Action) }],
    [topics.alertUpdates, { table: 'alert_updates', serde: serde<AlertUpdate>(topics.alertUpdates, AvroSchemas.alertUpdate), toRow: (v) => toAlertUpdateRow(v as AlertUpdate) }],
    [topics.refundReasons, { table: 'refund_reasons', serde: serde<RefundReason>(topics.refundReasons, AvroSchemas.refundReason), toRow: (v) => toRefundReasonRow(v as RefundReason) }],
    [topics.actionDecisions, { table: 'action_decisions', serde: serde<ActionDecision>(topics.actionDecisions, AvroSchemas.actionDecision), toRow: (v) => toActionDecisionRow(v as ActionDecision) }],
    [topics.incidentMembers, { table: 'incident_members', serde: serde<IncidentMembership>(topics.incidentMembers, AvroSchemas.incidentMembership), toRow: (v) => toIncidentMemberRow(v as IncidentMembership) }],
    [topics.dlq, { table: 'dead_letters', serde: dlqSerde as AvroSerde<unknown>, toRow: (v) => toDeadLetterRow(v as DeadLetter) }],
  ]);

  let consumer: Consumer | undefined;
  let timer: NodeJS.Timeout | undefined;
  let joined = false;
  // Consumer lag on a timer (committed vs end offsets of the partitions assigned here), not per batch.
  let admin: Admin | undefined;
  let assigned = new Map<string, number[]>();
  const lag = createConsumerLagMonitor({ admin: { fetchOffsets: (r) => admin!.fetchOffsets(r), fetchTopicOffsets: (t) => admin!.fetchTopicOffsets(t) }, groupId, owned: () => assigned, gauge: o.metrics.consumerLag, committedGauge: o.metrics.committedOffset, logger: o.logger });
  let buffered = 0;
  const pendingOffsets = new Map<string, { topic: string; partition: number; offset: string }>();
  // Rows the row mapper refused (RowValueError): sent to the DLQ by the next flush, before its commit.
  const pendingDeadLetters: UnwritableRow[] = [];
  let flushing: Promise<void> = Promise.resolve();
  let heartbeat: (() => Promise<void>) | undefined;
  let stopping = false;

  // Set once ClickHouse refused a statement for good (FatalWriteError): nothing more is written or committed.
  let fatal: FatalError | undefined;
  // Aborted when stop() runs out of time: flush retries end, nothing more is committed.
  const abandon = new AbortController();

  const failed = (e: FatalWriteError) => {
    if (fatal) return;
    fatal = e;
    joined = false;
    if (timer) clearInterval(timer);
    // Stop fetching: nothing fetched from here on could be written either.
    try {
      consumer?.pause([...routes.keys()].map((topic) => ({ topic })));
    } catch {
      // not running (yet): nothing to pause
    }
    o.logger.fatal({ err: e.cause, table: e.table, clickhouse_code: e.code, clickhouse_error: e.type, attempts: e.attempts, rows: buffered }, e.message);
    o.onFatal?.(e);
  };

  /**
   * Writes everything buffered (retrying with backoff, never dropping), then commits offsets.
   * Rejects only with the FatalWriteError that stopped the sink; then nothing is committed.
   */
  const flushAll = (): Promise<void> => {
    const run = flushing.then(async () => {
      if (fatal) throw fatal;
      if (buffered === 0 && pendingOffsets.size === 0) return;
      // Taken together: every row and dead letter of these offsets was buffered before this point.
      const offsets = [...pendingOffsets.values()];
      const rows = buffered;
      const deadLetters = pendingDeadLetters.splice(0);
      try {
        await flushWithRetry({
          writers,
          qualify: (t) => o.ch.table(t),
          policy: retryPolicy,
          afterWrites: async () => {
            if (deadLetters.length > 0) {
              await sendDeadLetters(deadLetters);
              deadLetters.length = 0;
            }
          },
          wait: async (ms) => {
            if (abandon.signal.aborted) throw new FlushAbandoned('stopping: gave up writing the buffered rows');
            await sleep(ms, abandon.signal);
            if (abandon.signal.aborted) throw new FlushAbandoned('stopping: gave up writing the buffered rows');
            await heartbeat?.().catch(() => undefined);
          },
          onFailure: (f) => {
            o.metrics.insertErrors.inc({ table: f.table ?? 'any' });
            if (f.waitMs === undefined) return; // giving up: failed() logs it
            o.metrics.retries.inc({ stage: 'sink.write', error_class: f.error.name });
            const msg = f.kind === 'fatal' ? 'ClickHouse rejected the statement; retrying a few times before stopping (offsets kept)' : 'ClickHouse write failed; backing off (offsets kept)';
            o.logger.warn({ err: f.error.message, table: f.table, attempt: f.attempt, wait: f.waitMs, rows }, msg);
          },
        });
      } catch (e) {
        // Offsets stay uncommitted: Kafka keeps the unwritten rows for the next run.
        if (e instanceof FatalWriteError) failed(e);
        throw e;
      }
      buffered = Math.max(0, buffered - rows);
      if (offsets.length > 0 && consumer) {
        try {
          await consumer.commitOffsets(offsets);
        } catch (e) {
          // Typically a rebalance took the partition: the new owner re-reads from the last commit
          // and the rows dedupe in ClickHouse.
          o.logger.warn({ err: (e as Error).message }, 'offset commit failed after write; rows will be replayed and deduplicated');
        }
        for (const off of offsets) {
          const k = `${off.topic}:${off.partition}`;
          if (pendingOffsets.get(k) === off) pendingOffsets.delete(k);
        }
      }
    });
    flushing = run.catch(() => undefined);
    return run;
  };

  async function eachBatch({ batch, resolveOffset, heartbeat: hb }: EachBatchPayload): Promise<void> {
    if (fatal) return; // fetched before the pause took effect: left for the next run
    heartbeat = hb;
    const route = routes.get(batch.topic);
    if (!route || batch.messages.length === 0) return;
    o.metrics.consumed.inc({ topic: batch.topic }, batch.messages.length);
    const started = performance.now();
    for (let attempt = 0; ; attempt++) {
      try {
        await route.serde.prefetch(batch.messages.map((m) => m.value));
        break;
      } catch (e) {
        const wait = Math.min(30_000, 200 * 2 ** attempt);
        o.metrics.retries.inc({ stage: 'sink.decode', error_class: (e as Error).name });
        o.logger.warn({ err: (e as Error).message, wait }, 'registry unavailable; backing off');
        await sleep(wait);
        await hb().catch(() => undefined);
      }
    }
    const w = writer(route.table);
    let decoded = 0;
    for (const m of batch.messages) {
      const source: DeadLetterSource = { topic: batch.topic, partition: batch.partition, offset: m.offset, key: m.key ?? null, value: m.value ?? null };
      let row: object;
      try {
        row = route.toRow(route.serde.decode(m.value));
      } catch (e) {
        if (e instanceof RowValueError) {
          // A value its column cannot hold (e.g. a time outside DateTime64): valid to the contract,
          // so the detector does not dead-letter it; the sink does, or the partition would stall.
          pendingDeadLetters.push({ source, table: route.table, errorClass: VALUE_OUT_OF_COLUMN_RANGE, reasonClass: 'VALUE_OUT_OF_COLUMN_RANGE', reason: e.message });
          buffered++;
          continue;
        }
        if (!isPoison(e) && !(e instanceof Error && e.name === 'InvalidValueError')) throw e;
        // The detector reads the same transactions and sends poison to the DLQ (which this sink
        // stores); for our own output topics a poison record is stored here as a dead letter.
        const reason = (e as Error).message;
        if (batch.topic === topics.transactions) {
          // Not counted in tillwatch_dlq_records_total: the detector sends it and counts it there once.
          o.logger.warn({ topic: batch.topic, partition: batch.partition, offset: m.offset, reason }, 'invalid transaction skipped by the sink (the detector dead-letters it)');
          continue;
        }
        o.metrics.dlq.inc({ topic: batch.topic, error_class: (e as { errorClass?: string }).errorClass ?? 'InvalidValue' });
        row = toDeadLetterRow(toDeadLetter(source, { reason, errorClass: (e as { errorClass?: string }).errorClass ?? 'InvalidValue', stage: 'sink.decode' }, Date.now()));
        await writer('dead_letters').add(row, source);
        buffered++;
        continue;
      }
      await w.add(row, source);
      buffered++;
      decoded++;
    }
    o.metrics.decoded.inc({ topic: batch.topic }, decoded);
    const last = batch.messages[batch.messages.length - 1]!.offset;
    pendingOffsets.set(`${batch.topic}:${batch.partition}`, { topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() });
    resolveOffset(last);
    if (buffered >= maxRows) {
      // Backpressure: fetching waits while ClickHouse is down.
      try {
        await flushAll();
      } catch (e) {
        // Already reported (failed()); returning rather than throwing keeps kafkajs from
        // restarting the consumer. autoCommit is off, so nothing of this batch is committed.
        if (e instanceof FatalError || e instanceof FlushAbandoned) return;
        throw e;
      }
    }
    o.metrics.batchLatency.observe({ stage: 'sink' }, (performance.now() - started) / 1000);
  }

  /** Flushes unless the sink has failed; a fatal error during the flush is reported, not thrown. */
  const flushUnlessFailed = async (): Promise<void> => {
    if (fatal || abandon.signal.aborted) return;
    await flushAll().catch((e: unknown) => {
      if (!(e instanceof FatalError) && !(e instanceof FlushAbandoned)) throw e;
    });
  };

  let stopped: Promise<void> | undefined;
  const stop = async (): Promise<void> => {
    stopping = true;
    if (timer) clearInterval(timer);
    // Stop fetching, then write and commit while still a group member (after stop() kafkajs has
    // no group to commit to); a batch still in flight is written and deduplicated on replay.
    // After a fatal error nothing is flushed or committed: the group keeps the last commit.
    consumer?.pause([...routes.keys()].map((topic) => ({ topic })));
    // Bounded: while ClickHouse is down the flush would back off forever, and an orchestrator would
    // kill the process mid-way anyway. Past the deadline the buffered rows are left unwritten and
    // their offsets uncommitted (no loss: the next owner of the partitions reads them again).
    const deadline = setTimeout(() => {
      o.logger.warn({ rows: buffered, stopTimeoutMs }, 'stopping without writing the buffered rows: ClickHouse still unavailable; their offsets are not committed and the next run reads them again');
      abandon.abort();
    }, stopTimeoutMs);
    deadline.unref();
    try {
      await flushUnlessFailed();
      await consumer?.stop();
      await flushUnlessFailed();
    } finally {
      clearTimeout(deadline);
    }
    try {
      await consumer?.disconnect();
      await producer?.disconnect();
      await lag.stop();
      await admin?.disconnect();
    } finally {
      // Its own consumer: stopped even when a disconnect above failed.
      await live?.stop();
    }
  };

  return {
    async start() {
      await Promise.all([...routes.values()].map((r) => r.serde.init()));
      // The latest rules version is read before any transaction is validated.
      if (o.liveRules) {
        const fallback = defaultRulesConfig();
        live = await startLiveRules({ kafka: o.kafka, registry: o.registry, topic: o.liveRules.topic, fallback: { ...fallback, engine: { ...fallback.engine, max_clock_skew: fallbackSkew } }, logger: o.logger, ...(o.liveRules.metrics ? { metrics: o.liveRules.metrics } : {}), groupPrefix: `${groupId}.rules` });
      }
      producer = o.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
      await producer.connect();
      consumer = o.kafka.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 250, sessionTimeout: 30_000 });
      admin = o.kafka.admin();
      await admin.connect();
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        joined = !fatal;
        assigned = new Map(Object.entries(e.payload.memberAssignment).filter(([t]) => routes.has(t)));
        lag.refresh();
      });
      await consumer.connect();
      for (const t of routes.keys()) await consumer.subscribe({ topic: t, fromBeginning: true });
      await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch });
      lag.start();
      timer = setInterval(() => {
        if (!stopping && !fatal) void flushAll().catch((e: unknown) => {
          if (!(e instanceof FatalError) && !(e instanceof FlushAbandoned)) o.logger.error({ err: e }, 'flush failed');
        });
      }, maxDelayMs);
    },
    stop: () => (stopped ??= stop()),
    ready: () => joined && !fatal,
    pending: () => buffered,
  };
}
