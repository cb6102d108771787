// The detector: consumes transactions and heartbeats, runs the shared rule engine per partition,
// publishes alerts, actions, dead letters and state changes in one Kafka transaction per batch.
// Build (createDetector) is separate from start (main.ts connects and listens).
import type { Kafka } from 'kafkajs';
import { AvroSchemas, Topics, checkTransaction, valueSubject, InvalidValueError, type Action, type Alert, type AlertUpdate, type DeadLetter, type RefundReason, type Heartbeat, type Transaction } from '@tillwatch/schemas';
import { createRuleEngine, type RuleEngine, type RulesConfig } from '@tillwatch/rules';
import { createAvroSerde, createTransactionalProcessor, InvalidRecordError, type RegistryClient, type TransactionalProcessor, type InputTopic } from '@tillwatch/stream';
import type { DetectorMetrics, Logger } from '@tillwatch/telemetry';
import { createDetectorTask, isNotifyAction, type DetectorTask, type DetectorTopics } from './detector-task.js';
import { validateHeartbeatRecord } from './heartbeats.js';
import { startLiveRules, type LiveRules, type RulesMetrics } from './live-rules.js';
import { createStageOutput } from './stage-output.js';

export interface DetectorOptions {
  kafka: Kafka;
  registry: RegistryClient;
  /** The rule set (TILLWATCH_RULES or the defaults); with liveRules, the fallback while pos.rules.v1 holds no valid document. */
  rules: RulesConfig;
  /**
   * Rules as live data: follow this rules topic (pos.rules.v1). start() reads it to its end before
   * processing; a new version applies at each partition's next batch. When the topic does not exist,
   * `rules` stays in force.
   */
  liveRules?: { topic: string; metrics?: RulesMetrics };
  metrics: DetectorMetrics;
  logger: Logger;
  groupId?: string;
  topics?: Partial<DetectorTopics & { changelog: string; dlq: string }>;
  /** Live mode: quiet partitions' clocks advance with wall time (sequence-gap timers). */
  wallClockTimers?: boolean;
  /** Changelog value format written (default 2; 1 for a rolling upgrade from a version that reads only 1; env DETECTOR_CHANGELOG_FORMAT). */
  changelogFormat?: 1 | 2;
  /** Consumer group session timeout (default DEFAULT_SESSION_TIMEOUT_MS; env DETECTOR_SESSION_TIMEOUT_MS). */
  sessionTimeoutMs?: number;
  tickIntervalMs?: number;
  onAlerts?: (alerts: Alert[]) => void;
  /** Builds the engine of one partition (default: createRuleEngine(rules)); a port for tests and wrappers. */
  createEngine?: (rules: RulesConfig, partition: number) => RuleEngine;
  /** Called once with an error no retry can cure (the process should exit non-zero). */
  onFatal?: (error: Error) => void;
  /**
   * The second stage (issue 10, services/stage): episodes, proposed actions and the watermark go to
   * this internal topic and the detector publishes no actions itself. Absent: actions are published directly.
   */
  stage?: { topic: string; graceMs?: number };
  /**
   * Transactions and heartbeats of a partition in received-time order across the two topics
   * (default true; README item 4). false: fetch-batch order (tests show the difference with it).
   */
  alignInputs?: boolean;
}

/** The order of the two inputs under alignInputs: received_time of a transaction or a heartbeat. */
const receivedTime = (value: unknown): number => (value as { received_time: number }).received_time;

export interface Detector {
  start(): Promise<void>;
  stop(): Promise<void>;
  ready(): boolean;
  assignedPartitions(): number[];
  /** Version of the rules in force (the live one when following pos.rules.v1). */
  rulesVersion(): number;
}

/**
 * How long a killed detector's partitions wait before the group rebalances (issue 12 point 4).
 * kafkajs has no static membership (KIP-345), so the session is shortened instead of the default
 * 30 s; heartbeats keep going during long batches and restores (transactional-processor.ts). The
 * false-eviction rate under full CPU that chose it: load-tests README, "Rebalance stall".
 */
export const DEFAULT_SESSION_TIMEOUT_MS = 10_000;

/**
 * The detector's two inputs as the processor reads them: Avro through the registry, then the
 * contract's checks (a failure is an InvalidRecordError: dead letter, stage validate). Exported for
 * the load test's floor (load-tests/src/floor.ts), which decodes exactly as the detector does.
 */
export function createDetectorInputs(registry: RegistryClient, topics: { transactions: string; heartbeats: string }, maxClockSkewMs: (partition: number) => number): { inputs: InputTopic[]; init(): Promise<void> } {
  const txnSerde = createAvroSerde<Transaction>(registry, valueSubject(topics.transactions), AvroSchemas.transaction);
  const hbSerde = createAvroSerde<Heartbeat>(registry, valueSubject(topics.heartbeats), AvroSchemas.heartbeat);
  // One options object per partition and bound (reused: nothing allocated per record). A received_time
  // ahead of the wall clock by more than the bound is dead-lettered (ClockSkew); the clock is read once
  // per fetched batch (the processor prefetches every batch before decoding it): the bound is an hour
  // or so, a batch's age is seconds, and a read per record cost ~0.6 % of a core at 100k records/s.
  let batchNow = 0;
  const perPartition = new Map<number, { maxClockSkewMs: number; nowMs: number }>();
  const validateOptionsOf = (partition: number): { maxClockSkewMs: number; nowMs: number } => {
    const bound = maxClockSkewMs(partition);
    let opts = perPartition.get(partition);
    if (opts?.maxClockSkewMs !== bound) perPartition.set(partition, (opts = { maxClockSkewMs: bound, nowMs: 0 }));
    opts.nowMs = batchNow === 0 ? Date.now() : batchNow;
    return opts;
  };
  const inputs: InputTopic[] = [
    {
      topic: topics.transactions,
      prefetch: (values) => {
        batchNow = Date.now();
        return txnSerde.prefetch(values.filter((v): v is Buffer => v !== null));
      },
      decode: (value, partition) => {
        const validateOptions = validateOptionsOf(partition);
        const raw = txnSerde.decode(value);
        try {
          // Avro guarantees shape; the contract adds rules Avro cannot (non-negative amount, ISO currency, no PAN).
          // Times bounded too: before 2000 or from 2200 on (InvalidValue), or more than the rules'
          // engine.max_clock_skew after received_time (ClockSkew). The backtest rejects the same.
          // The decoded record has the contract's fields exactly (our reader schema): checked, not copied.
          return checkTransaction(raw, validateOptions);
        } catch (e) {
          if (e instanceof InvalidValueError) throw new InvalidRecordError(e.message, { cause: e, errorClass: e.errorClass, stage: 'validate' });
          throw e;
        }
      },
      time: receivedTime,
    },
    {
      topic: topics.heartbeats,
      prefetch: (values) => {
        batchNow = Date.now();
        return hbSerde.prefetch(values.filter((v): v is Buffer => v !== null));
      },
      decode: (value, partition) => validateHeartbeatRecord(hbSerde.decode(value), validateOptionsOf(partition)),
      time: receivedTime,
    },
  ];
  return { inputs, init: async () => void (await Promise.all([txnSerde.init(), hbSerde.init()])) };
}

export function createDetector(o: DetectorOptions): Detector {
  const topics = {
    transactions: o.topics?.transactions ?? Topics.transactions,
    heartbeats: o.topics?.heartbeats ?? Topics.heartbeats,
    alerts: o.topics?.alerts ?? Topics.alerts,
    freezeActions: o.topics?.freezeActions ?? Topics.freezeActions,
    notifyActions: o.topics?.notifyActions ?? Topics.notifyActions,
    alertUpdates: o.topics?.alertUpdates ?? Topics.alertUpdates,
    refundReasons: o.topics?.refundReasons ?? Topics.refundReasons,
    shadowAlerts: o.topics?.shadowAlerts ?? Topics.shadowAlerts,
    changelog: o.topics?.changelog ?? Topics.detectorChangelog,
    dlq: o.topics?.dlq ?? Topics.dlq,
  };
  const groupId = o.groupId ?? 'tillwatch-detector';
  // The tasks by partition: a record's checks use the rules version its task applies to the batch
  // (engine.max_clock_skew of a pushed document takes effect with the rest of it, at the same boundary).
  // Weak: a task the processor dropped (revoked partition) is not kept alive with its engine's state.
  const tasks = new Map<number, WeakRef<DetectorTask>>();
  const staticSkew = o.rules.engine.max_clock_skew;
  const decoding = createDetectorInputs(
    o.registry,
    topics,
    o.liveRules
      ? (partition) => {
          // The processor decodes only for partitions whose task it holds (it built it with createTask below).
          const task = tasks.get(partition)?.deref();
          if (!task) throw new Error(`detector: no task for partition ${partition} while decoding its records`);
          return task.rulesForBatch()!.engine.max_clock_skew;
        }
      : () => staticSkew,
  );
  const alertSerde = createAvroSerde<Alert>(o.registry, valueSubject(topics.alerts), AvroSchemas.alert);
  const shadowSerde = createAvroSerde<Alert>(o.registry, valueSubject(topics.shadowAlerts), AvroSchemas.alert);
  const freezeSerde = createAvroSerde<Action>(o.registry, valueSubject(topics.freezeActions), AvroSchemas.action);
  const notifySerde = createAvroSerde<Action>(o.registry, valueSubject(topics.notifyActions), AvroSchemas.action);
  const updateSerde = createAvroSerde<AlertUpdate>(o.registry, valueSubject(topics.alertUpdates), AvroSchemas.alertUpdate);
  const reasonSerde = createAvroSerde<RefundReason>(o.registry, valueSubject(topics.refundReasons), AvroSchemas.refundReason);
  const dlqSerde = createAvroSerde<DeadLetter>(o.registry, valueSubject(topics.dlq), AvroSchemas.deadLetter);
  const inputs = decoding.inputs;

  let processor: TransactionalProcessor | undefined;
  let live: LiveRules | undefined;
  const currentRules = (): RulesConfig => live?.current() ?? o.rules;

  return {
    async start() {
      // Registering is idempotent and gives the ids used for encoding (and proves the registry is up).
      await Promise.all([decoding.init(), alertSerde.init(), freezeSerde.init(), notifySerde.init(), shadowSerde.init(), updateSerde.init(), reasonSerde.init(), dlqSerde.init()]);
      // The latest rules version is read before any partition processes anything.
      if (o.liveRules) {
        live = await startLiveRules({ kafka: o.kafka, registry: o.registry, topic: o.liveRules.topic, fallback: o.rules, logger: o.logger, ...(o.liveRules.metrics ? { metrics: o.liveRules.metrics } : {}), groupPrefix: `${groupId}.rules` });
      }
      processor = createTransactionalProcessor({
        kafka: o.kafka,
        groupId,
        transactionalIdPrefix: `${groupId}.${topics.transactions}`,
        inputs,
        // Transactions and heartbeats of a partition in received-time order (README, item 4).
        alignInputs: o.alignInputs ?? true,
        changelogTopic: topics.changelog,
        dlqTopic: topics.dlq,
        encodeDeadLetter: (d) => dlqSerde.encode(d),
        metrics: o.metrics,
        logger: o.logger,
        tickIntervalMs: o.tickIntervalMs ?? 1000,
        sessionTimeoutMs: o.sessionTimeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS,
        ...(o.onFatal ? { onFatal: o.onFatal } : {}),
        createTask: (partition) => {
          const task = createDetectorTask({
            partition,
            // A task built after a rules switch (assignment, restore after a fenced batch) starts on the current version.
            engine: o.createEngine ? o.createEngine(currentRules(), partition) : createRuleEngine(currentRules()),
            topics,
            encodeAlert: (a) => alertSerde.encode(a),
            encodeShadowAlert: (a) => shadowSerde.encode(a),
            ...(o.liveRules ? { rules: currentRules, onRulesApplied: (partition: number, version: number) => o.logger.info({ partition, version }, 'partition switched rules version') } : {}),
            encodeAction: (a) => (isNotifyAction(a) ? notifySerde : freezeSerde).encode(a),
            encodeUpdate: (u) => updateSerde.encode(u),
            encodeRefundReason: (r) => reasonSerde.encode(r),
            metrics: o.metrics,
            wallClockTimers: o.wallClockTimers ?? true,
            ...(o.changelogFormat ? { changelogFormat: o.changelogFormat } : {}),
            ...(o.onAlerts ? { onAlerts: o.onAlerts } : {}),
            ...(o.stage ? { stage: createStageOutput({ partition, topic: o.stage.topic, ...(o.stage.graceMs !== undefined ? { graceMs: o.stage.graceMs } : {}) }) } : {}),
          });
          tasks.set(partition, new WeakRef(task));
          return task;
        },
      });
      await processor.start();
    },
    async stop() {
      await processor?.stop();
      await live?.stop();
    },
    ready: () => processor?.ready() ?? false,
    rulesVersion: () => currentRules().version,
    assignedPartitions: () => processor?.assignedPartitions() ?? [],
  };
}
