// Versioned topic names and their provisioning settings. A breaking contract change means a new
// topic (`.v2`), never an in-place rewrite of `.v1`.

export const Topics = {
  transactions: 'pos.transactions.v1',
  heartbeats: 'pos.heartbeats.v1',
  alerts: 'pos.alerts.v1',
  /** Alert lifecycle updates (auto-resolutions); key merchant_id, co-partitioned with alerts. */
  alertUpdates: 'pos.alerts.updates.v1',
  /** Why each approved refund, reversal or void happened; key merchant_id. */
  refundReasons: 'pos.refunds.reasons.v1',
  freezeActions: 'pos.actions.freeze.v1',
  notifyActions: 'pos.actions.notify.v1',
  dlq: 'pos.dlq.v1',
  /** Detector state changelog (compacted); one per detector consumer group. */
  detectorChangelog: 'pos.detector.changelog.v1',
  /** Rules documents (compacted, 1 partition), key = version and a digest of the record: every pushed record is kept (history). */
  rules: 'pos.rules.v1',
  /** Alerts of rules in shadow mode: the alert contract, no actions, nothing on pos.alerts.v1. */
  shadowAlerts: 'pos.alerts.shadow.v1',
  /**
   * Internal (no registered contract, JSON values): what each detector partition tells the second
   * stage (episode starts/ends, proposed actions, terminal activity, its watermark), written in the
   * detector's transaction. One partition: the stage is a single task.
   */
  stageInput: 'tillwatch.stage2.input.v1',
  /** The second stage's state changelog (compacted, 1 partition, co-partitioned with stageInput). */
  stageChangelog: 'tillwatch.stage2.changelog.v1',
  /** The action governor's decisions (issued, suppressed, downgraded); key merchant_id. */
  actionDecisions: 'pos.actions.decisions.v1',
  /** Which per-terminal alerts belong to which fleet incident (second stage); key merchant_id. */
  incidentMembers: 'pos.incidents.members.v1',
} as const;

export type TopicRole = keyof typeof Topics;

export interface TopicSpec {
  role: TopicRole;
  partitions: number;
  /** Kafka topic-level configs (strings, as the AdminClient expects). */
  config: Record<string, string>;
}

const DAY = 24 * 3600 * 1000;

/**
 * Partition counts match the input topic: the detector is keyed by merchant_id and its changelog
 * must be co-partitioned with pos.transactions.v1 (changelog partition p holds the state of input
 * partition p), so these two counts must stay equal.
 */
export function topicSpecs(partitions = 6): TopicSpec[] {
  return [
    { role: 'transactions', partitions, config: { 'retention.ms': String(7 * DAY) } },
    { role: 'heartbeats', partitions, config: { 'retention.ms': String(1 * DAY) } },
    { role: 'alerts', partitions, config: { 'retention.ms': String(30 * DAY) } },
    // Same partition count and key as alerts: an alert and its updates land in the same partition number.
    { role: 'alertUpdates', partitions, config: { 'retention.ms': String(30 * DAY) } },
    { role: 'refundReasons', partitions, config: { 'retention.ms': String(30 * DAY) } },
    { role: 'freezeActions', partitions, config: { 'retention.ms': String(30 * DAY) } },
    { role: 'notifyActions', partitions, config: { 'retention.ms': String(30 * DAY) } },
    { role: 'dlq', partitions: 1, config: { 'retention.ms': String(30 * DAY) } },
    {
      role: 'detectorChangelog',
      partitions,
      // Compacted: only the latest snapshot per key matters for restore (as Kafka Streams changelogs).
      config: { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '0', 'segment.ms': String(3600 * 1000), 'max.compaction.lag.ms': String(DAY) },
    },
    // One partition: a total order of versions, read whole by every detector, CLI and API instance.
    // Keyed by version and a digest of the record (rules-live rulesRecordKey), so compaction removes only exact copies.
    { role: 'rules', partitions: 1, config: { 'cleanup.policy': 'compact' } },
    { role: 'shadowAlerts', partitions, config: { 'retention.ms': String(30 * DAY) } },
    { role: 'stageInput', partitions: 1, config: { 'retention.ms': String(7 * DAY) } },
    { role: 'stageChangelog', partitions: 1, config: { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '0', 'segment.ms': String(3600 * 1000), 'max.compaction.lag.ms': String(DAY) } },
    { role: 'actionDecisions', partitions, config: { 'retention.ms': String(30 * DAY) } },
    { role: 'incidentMembers', partitions, config: { 'retention.ms': String(30 * DAY) } },
  ];
}

/** Confluent TopicNameStrategy: the value subject of a topic. */
export const valueSubject = (topic: string): string => `${topic}-value`;

/**
 * Every topic name under an optional prefix (`TOPIC_PREFIX`): several pipelines (tenants,
 * environments, tests, replays) can share one cluster without sharing data.
 */
export function topicNames(prefix?: string): Record<TopicRole, string> {
  const p = prefixOf(prefix);
  return Object.fromEntries(Object.entries(Topics).map(([role, name]) => [role, `${p}${name}`])) as Record<TopicRole, string>;
}

const prefixOf = (prefix?: string): string => (prefix ? (prefix.endsWith('.') ? prefix : `${prefix}.`) : '');

/**
 * A service's consumer group when *_GROUP_ID is unset: under the same TOPIC_PREFIX as its topics.
 * Two environments sharing a cluster under different prefixes must not share a group: a group's
 * assignment spans every member's topics, and kafkajs drops the partitions of a topic a member did
 * not subscribe to, so each environment would silently leave part of its partitions unread.
 */
export function defaultGroupId(service: 'detector' | 'sink' | 'stage', prefix?: string): string {
  return `${prefixOf(prefix)}tillwatch-${service}`;
}
