// The sink: Kafka (read_committed) → ClickHouse, in size- and time-bounded batches, committing
// consumed offsets only after every row up to them is written. Replays are harmless: tables are
// ReplacingMergeTree keyed by the contract's ids and each batch carries an insert deduplication
// token, so at-least-once delivery becomes effectively-once rows.
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { AvroSchemas, Topics, validateTransaction, valueSubject, type Action, type Alert, type DeadLetter, type Transaction } from '@tillwatch/schemas';
import { createBatchWriter, toActionRow, toAlertRow, toDeadLetterRow, toTransactionRow, type BatchWriter, type ClickHouse } from '@tillwatch/clickhouse';
import { createAvroSerde, isPoison, type AvroSerde, type RegistryClient } from '@tillwatch/stream';
import type { Logger, SinkMetrics } from '@tillwatch/telemetry';

export interface SinkTopics {
  transactions: string;
  alerts: string;
  freezeActions: string;
  notifyActions: string;
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
  /** Flush when this many rows are buffered across tables. */
  maxRows?: number;
  /** Flush at least this often while rows are buffered. */
  maxDelayMs?: number;
}

export interface Sink {
  start(): Promise<void>;
  /** Flushes what is buffered, commits, leaves the group. */
  stop(): Promise<void>;
  ready(): boolean;
  /** Rows buffered and not yet written. */
  pending(): number;
}

type Route = { table: string; serde: AvroSerde<unknown>; toRow: (v: unknown) => object };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function createSink(o: SinkOptions): Sink {
  const topics: SinkTopics = {
    transactions: o.topics?.transactions ?? Topics.transactions,
    alerts: o.topics?.alerts ?? Topics.alerts,
    freezeActions: o.topics?.freezeActions ?? Topics.freezeActions,
    notifyActions: o.topics?.notifyActions ?? Topics.notifyActions,
    dlq: o.topics?.dlq ?? Topics.dlq,
  };
  const groupId = o.groupId ?? 'tillwatch-sink';
  const maxRows = o.maxRows ?? 5000;
  const maxDelayMs = o.maxDelayMs ?? 1000;
  const serde = <T>(topic: string, schema: object) => createAvroSerde<T>(o.registry, valueSubject(topic), schema) as AvroSerde<unknown>;

  const writers = new Map<string, BatchWriter<object>>();
  const writer = (table: string): BatchWriter<object> => {
    let w = writers.get(table);
    if (!w) {
      // Flushing is driven here (offsets are committed after all tables flush), so the writer's own
      // triggers are set out of reach.
      w = createBatchWriter<object>({
        ch: o.ch,
        table,
        maxRows: Number.MAX_SAFE_INTEGER,
        maxDelayMs: 2 ** 31 - 1,
        onFlush: (i) => {
          o.metrics.rowsWritten.inc({ table: i.table }, i.rows);
          o.metrics.insertLatency.observe({ table: i.table }, i.durationMs / 1000);
        },
      });
      writers.set(table, w);
    }
    return w;
  };

  const routes = new Map<string, Route>([
    [topics.transactions, { table: 'transactions', serde: serde<Transaction>(topics.transactions, AvroSchemas.transaction), toRow: (v) => toTransactionRow(validateTransaction(v)) }],
    [topics.alerts, { table: 'alerts', serde: serde<Alert>(topics.alerts, AvroSchemas.alert), toRow: (v) => toAlertRow(v as Alert) }],
    [topics.freezeActions, { table: 'actions', serde: serde<Action>(topics.freezeActions, AvroSchemas.action), toRow: (v) => toActionRow(v as Action) }],
    [topics.notifyActions, { table: 'actions', serde: serde<Action>(topics.notifyActions, AvroSchemas.action), toRow: (v) => toActionRow(v as Action) }],
    [topics.dlq, { table: 'dead_letters', serde: serde<DeadLetter>(topics.dlq, AvroSchemas.deadLetter), toRow: (v) => toDeadLetterRow(v as DeadLetter) }],
  ]);

  let consumer: Consumer | undefined;
  let timer: NodeJS.Timeout | undefined;
  let joined = false;
  let buffered = 0;
  const pendingOffsets = new Map<string, { topic: string; partition: number; offset: string }>();
  let flushing: Promise<void> = Promise.resolve();
  let heartbeat: (() => Promise<void>) | undefined;
  let stopping = false;

  /** Writes everything buffered (retrying with backoff, never dropping), then commits offsets. */
  const flushAll = (): Promise<void> => {
    const run = flushing.then(async () => {
      if (buffered === 0 && pendingOffsets.size === 0) return;
      const offsets = [...pendingOffsets.values()];
      const rows = buffered;
      for (let attempt = 0; ; attempt++) {
        try {
          for (const w of writers.values()) await w.flush();
          break;
        } catch (e) {
          const wait = Math.min(30_000, 200 * 2 ** attempt);
          o.metrics.insertErrors.inc({ table: 'any' });
          o.metrics.retries.inc({ stage: 'sink.write', error_class: (e as Error).name });
          o.logger.warn({ err: (e as Error).message, attempt, wait, rows }, 'ClickHouse write failed; backing off (offsets kept)');
          await sleep(wait);
          await heartbeat?.().catch(() => undefined);
        }
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
      let row: object;
      try {
        row = route.toRow(route.serde.decode(m.value));
      } catch (e) {
        if (!isPoison(e) && !(e instanceof Error && e.name === 'InvalidValueError')) throw e;
        // The detector reads the same transactions and sends poison to the DLQ (which this sink
        // stores); for our own output topics a poison record is stored here as a dead letter.
        const reason = (e as Error).message;
        o.metrics.dlq.inc({ topic: batch.topic, error_class: (e as { errorClass?: string }).errorClass ?? 'InvalidValue' });
        if (batch.topic === topics.transactions) {
          o.logger.warn({ topic: batch.topic, partition: batch.partition, offset: m.offset, reason }, 'invalid transaction skipped by the sink (the detector dead-letters it)');
          continue;
        }
        row = toDeadLetterRow({ reason, error_class: (e as { errorClass?: string }).errorClass ?? 'InvalidValue', stage: 'sink.decode', source_topic: batch.topic, source_partition: batch.partition, source_offset: Number(m.offset), key: m.key ?? null, value: m.value ?? null, failed_at: Date.now() });
        await writer('dead_letters').add(row);
        buffered++;
        continue;
      }
      await w.add(row);
      buffered++;
      decoded++;
    }
    o.metrics.decoded.inc({ topic: batch.topic }, decoded);
    const last = batch.messages[batch.messages.length - 1]!.offset;
    pendingOffsets.set(`${batch.topic}:${batch.partition}`, { topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() });
    resolveOffset(last);
    o.metrics.consumerLag.set({ topic: batch.topic, partition: String(batch.partition) }, Number(batch.offsetLag()));
    if (buffered >= maxRows) await flushAll(); // backpressure: fetching waits while ClickHouse is down
    o.metrics.batchLatency.observe({ stage: 'sink' }, (performance.now() - started) / 1000);
  }

  return {
    async start() {
      await Promise.all([...routes.values()].map((r) => r.serde.init()));
      consumer = o.kafka.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 250, sessionTimeout: 30_000 });
      consumer.on(consumer.events.GROUP_JOIN, () => (joined = true));
      await consumer.connect();
      for (const t of routes.keys()) await consumer.subscribe({ topic: t, fromBeginning: true });
      await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch });
      timer = setInterval(() => {
        if (!stopping) void flushAll().catch((e: unknown) => o.logger.error({ err: e }, 'flush failed'));
      }, maxDelayMs);
    },
    async stop() {
      stopping = true;
      if (timer) clearInterval(timer);
      // Stop fetching, then write and commit while still a group member (after stop() kafkajs has
      // no group to commit to); a batch still in flight is written and deduplicated on replay.
      consumer?.pause([...routes.keys()].map((topic) => ({ topic })));
      await flushAll();
      await consumer?.stop();
      await flushAll();
      await consumer?.disconnect();
    },
    ready: () => joined,
    pending: () => buffered,
  };
}
