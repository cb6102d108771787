// The second stage as a service: consumes the detector partitions' internal topic
// (tillwatch.stage2.input.v1, one partition) with the same exactly-once transactional processor as
// the detector (@tillwatch/stream: one Kafka transaction per batch with outputs, changelog and
// offsets; restore from its compacted changelog on assignment), runs the pure stage core and
// publishes incident / circuit alerts, their updates, the governed actions and every decision.
// Build (createStage) is separate from start (main.ts).
import type { Kafka } from 'kafkajs';
import { AvroSchemas, Topics, valueSubject, type Action, type ActionDecision, type Alert, type AlertUpdate, type DeadLetter, type IncidentMembership } from '@tillwatch/schemas';
import type { RulesConfig } from '@tillwatch/rules';
import { startLiveRules, type LiveRules, type RulesMetrics } from '@tillwatch/rules-live';
import type { StageOutput } from '@tillwatch/stage';
import { createAvroSerde, createTransactionalProcessor, InvalidRecordError, UndecodableRecordError, type RegistryClient, type TransactionalProcessor } from '@tillwatch/stream';
import type { Logger } from '@tillwatch/telemetry';
import type { StageMetrics } from './metrics.js';
import { createStageTask, type StageTopics } from './stage-task.js';

export interface StageOptions {
  kafka: Kafka;
  registry: RegistryClient;
  /** The rule set (TILLWATCH_RULES or the defaults); with liveRules, the fallback while pos.rules.v1 holds no valid document. */
  rules: RulesConfig;
  /**
   * Rules as live data: follow this rules topic (pos.rules.v1), as the detector does. start() reads it
   * to its end before processing; a new version applies at the task's next batch (its `stage` section:
   * sync_incident and governor settings). When the topic does not exist, `rules` stays in force.
   */
  liveRules?: { topic: string; metrics?: RulesMetrics };
  metrics: StageMetrics;
  logger: Logger;
  groupId?: string;
  topics?: Partial<StageTopics & { input: string; changelog: string; dlq: string; transactions: string }>;
  /** Partitions of the detector's input topic; default: read from the transactions topic's metadata. */
  inputPartitions?: number;
  onFatal?: (error: Error) => void;
  onCommitted?: (out: StageOutput) => void;
}

export interface Stage {
  start(): Promise<void>;
  stop(): Promise<void>;
  ready(): boolean;
  /** Version of the rules in force (the live one when following pos.rules.v1). */
  rulesVersion(): number;
}

const TYPES = new Set(['start', 'end', 'alert', 'action', 'seen', 'watermark']);

/** Decodes one internal-topic value; anything else is a poison record (dead-lettered, never silently dropped). */
export function decodeStageRecord(value: Buffer | null): unknown {
  if (value === null) throw new UndecodableRecordError('empty value on the stage input topic');
  let r: unknown;
  try {
    r = JSON.parse(value.toString('utf8'));
  } catch (e) {
    throw new UndecodableRecordError(`stage input is not JSON: ${(e as Error).message}`, { cause: e });
  }
  const o = r as { type?: unknown; partition?: unknown; time?: unknown };
  if (typeof r !== 'object' || r === null || !TYPES.has(o.type as string) || !Number.isInteger(o.partition) || typeof o.time !== 'number') {
    throw new InvalidRecordError('stage input record without a known type, an integer partition and a numeric time', { stage: 'validate' });
  }
  return r;
}

export function createStage(o: StageOptions): Stage {
  const topics = {
    input: o.topics?.input ?? Topics.stageInput,
    changelog: o.topics?.changelog ?? Topics.stageChangelog,
    dlq: o.topics?.dlq ?? Topics.dlq,
    transactions: o.topics?.transactions ?? Topics.transactions,
    alerts: o.topics?.alerts ?? Topics.alerts,
    alertUpdates: o.topics?.alertUpdates ?? Topics.alertUpdates,
    freezeActions: o.topics?.freezeActions ?? Topics.freezeActions,
    notifyActions: o.topics?.notifyActions ?? Topics.notifyActions,
    actionDecisions: o.topics?.actionDecisions ?? Topics.actionDecisions,
    incidentMembers: o.topics?.incidentMembers ?? Topics.incidentMembers,
  };
  const groupId = o.groupId ?? 'tillwatch-stage';
  const alertSerde = createAvroSerde<Alert>(o.registry, valueSubject(topics.alerts), AvroSchemas.alert);
  const updateSerde = createAvroSerde<AlertUpdate>(o.registry, valueSubject(topics.alertUpdates), AvroSchemas.alertUpdate);
  const freezeSerde = createAvroSerde<Action>(o.registry, valueSubject(topics.freezeActions), AvroSchemas.action);
  const notifySerde = createAvroSerde<Action>(o.registry, valueSubject(topics.notifyActions), AvroSchemas.action);
  const decisionSerde = createAvroSerde<ActionDecision>(o.registry, valueSubject(topics.actionDecisions), AvroSchemas.actionDecision);
  const memberSerde = createAvroSerde<IncidentMembership>(o.registry, valueSubject(topics.incidentMembers), AvroSchemas.incidentMembership);
  const dlqSerde = createAvroSerde<DeadLetter>(o.registry, valueSubject(topics.dlq), AvroSchemas.deadLetter);
  let processor: TransactionalProcessor | undefined;
  let live: LiveRules | undefined;
  const currentRules = (): RulesConfig => live?.current() ?? o.rules;

  return {
    async start() {
      await Promise.all([alertSerde.init(), updateSerde.init(), freezeSerde.init(), notifySerde.init(), decisionSerde.init(), memberSerde.init(), dlqSerde.init()]);
      let partitions = o.inputPartitions;
      if (partitions === undefined) {
        const admin = o.kafka.admin();
        await admin.connect();
        try {
          const meta = await admin.fetchTopicMetadata({ topics: [topics.transactions] });
          partitions = meta.topics[0]?.partitions.length ?? 0;
        } finally {
          await admin.disconnect();
        }
      }
      if (!partitions) throw new Error(`the stage needs the partition count of ${topics.transactions}, which has none`);
      // The latest rules version is read before anything is processed (the detector's follower).
      if (o.liveRules) {
        live = await startLiveRules({ kafka: o.kafka, registry: o.registry, topic: o.liveRules.topic, fallback: o.rules, logger: o.logger, ...(o.liveRules.metrics ? { metrics: o.liveRules.metrics } : {}), groupPrefix: `${groupId}.rules` });
      }
      o.logger.info({ inputPartitions: partitions, input: topics.input }, 'stage waits for the watermark of every detector partition');
      processor = createTransactionalProcessor({
        kafka: o.kafka,
        groupId,
        transactionalIdPrefix: `${groupId}.${topics.input}`,
        inputs: [{ topic: topics.input, decode: decodeStageRecord }],
        changelogTopic: topics.changelog,
        dlqTopic: topics.dlq,
        deadLetterStagePrefix: 'stage',
        encodeDeadLetter: (d) => dlqSerde.encode(d),
        metrics: o.metrics,
        logger: o.logger,
        tickIntervalMs: 60_000,
        ...(o.onFatal ? { onFatal: o.onFatal } : {}),
        createTask: () =>
          createStageTask({
            inputPartitions: partitions,
            // A task built after a switch (assignment, restore after a fenced batch) starts on the current version.
            rules: currentRules(),
            ...(o.liveRules ? { currentRules, onRulesApplied: (version: number) => o.logger.info({ version }, 'stage switched rules version') } : {}),
            topics,
            encodeAlert: (a) => alertSerde.encode(a),
            encodeUpdate: (u) => updateSerde.encode(u),
            encodeAction: (a) => (a.kind === 'NOTIFY_MERCHANT' || a.kind === 'NOTIFY_ACQUIRER' ? notifySerde : freezeSerde).encode(a),
            encodeDecision: (d) => decisionSerde.encode(d),
            encodeMembership: (m) => memberSerde.encode(m),
            metrics: o.metrics,
            ...(o.onCommitted ? { onCommitted: o.onCommitted } : {}),
          }),
      });
      await processor.start();
    },
    async stop() {
      await processor?.stop();
      await live?.stop();
    },
    ready: () => processor?.ready() ?? false,
    rulesVersion: () => currentRules().version,
  };
}
