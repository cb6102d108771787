// Provisioning: topics with their partitions and configs, and every contract registered under its
// subject with the BACKWARD compatibility policy. Safe to rerun.
import type { Admin } from 'kafkajs';

/** Topics the design needs with exactly one partition (decided by role: TOPIC_PARTITIONS=1 gives every spec 1). */
const SINGLE_PARTITION = new Set<keyof typeof Topics>(['rules', 'stageInput', 'stageChangelog']);

/** kafkajs's ConfigResourceTypes.TOPIC (not a named ESM export of the CommonJS package: a real process cannot import it). */
const TOPIC_RESOURCE = 2;
import { AvroSchemas, COMPATIBILITY, TopicContracts, Topics, topicSpecs, valueSubject } from '@tillwatch/schemas';
import { FatalError } from './errors.js';
import type { RegistryClient } from './registry/client.js';

/**
 * A freshly formatted broker can answer UNKNOWN_TOPIC_OR_PARTITION / NOT_CONTROLLER for a moment
 * while its metadata settles; createTopics is idempotent for our purpose (existing = fine).
 */
async function withRetry<T>(fn: () => Promise<T>, attempts = 6): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (e) {
      const type = (e as { type?: string }).type ?? '';
      if (type === 'TOPIC_ALREADY_EXISTS') return undefined as T;
      if (i >= attempts - 1 || !(e as { retriable?: boolean }).retriable) throw e;
      await new Promise((r) => setTimeout(r, 250 * 2 ** i));
    }
  }
}

export interface ProvisionTopicsOptions {
  partitions: number;
  replicationFactor: number;
  /** Rename topics (tests use random prefixes); default: the catalogue's names. */
  topicName?: (role: keyof typeof Topics) => string;
}

export async function provisionTopics(admin: Admin, o: ProvisionTopicsOptions): Promise<{ created: string[]; existing: string[] }> {
  const name = o.topicName ?? ((role) => Topics[role]);
  const specs = topicSpecs(o.partitions).map((s) => ({ ...s, topic: name(s.role) }));
  const existingTopics = new Set(await admin.listTopics());
  const toCreate = specs.filter((s) => !existingTopics.has(s.topic));
  if (toCreate.length > 0) {
    await withRetry(() => admin.createTopics({
      waitForLeaders: true,
      topics: toCreate.map((s) => ({
        topic: s.topic,
        numPartitions: s.partitions,
        replicationFactor: o.replicationFactor,
        configEntries: Object.entries(s.config).map(([n, value]) => ({ name: n, value })),
      })),
    }));
  }
  // Topics that existed before are checked, not trusted: a wrong partition count or cleanup policy is
  // never fixed by rerunning provision and would corrupt results quietly (checkTopicLayout).
  const problems = await checkTopicLayout(admin, specs);
  if (problems.length > 0) throw new FatalError(`the topics on Kafka do not have the layout Tillwatch needs: ${problems.join('; ')}. Recreate those topics (deleting their data) or point TOPIC_PREFIX at new ones`);
  return { created: toCreate.map((s) => s.topic), existing: specs.filter((s) => existingTopics.has(s.topic)).map((s) => s.topic) };
}

/**
 * What must hold of the topics, whoever created them:
 * - co-partitioned groups have equal partition counts: transactions, heartbeats and the detector's
 *   changelog (a task reads partition N of each: a merchant's heartbeats must reach the task holding
 *   its terminals, and its state must restore there), and alerts with their updates (an alert and its
 *   updates land in the same partition number);
 * - single-partition topics have one (the rules topic's total order of versions, the stage's input and changelog);
 * - changelogs and the rules topic are compacted (a delete policy would drop state older than the retention, and restores lose it silently).
 */
async function checkTopicLayout(admin: Admin, specs: Array<{ role: keyof typeof Topics; topic: string; partitions: number; config: Record<string, string> }>): Promise<string[]> {
  const problems: string[] = [];
  const meta = await admin.fetchTopicMetadata({ topics: specs.map((s) => s.topic) });
  const count = new Map(meta.topics.map((t) => [t.name, t.partitions.length]));
  const topicOf = (role: keyof typeof Topics) => specs.find((s) => s.role === role)!.topic;
  const coPartitioned: Array<[Array<keyof typeof Topics>, string]> = [
    [['transactions', 'heartbeats', 'detectorChangelog'], 'the detector reads partition N of each in one task'],
    [['alerts', 'alertUpdates'], 'an alert and its updates share a partition number'],
  ];
  for (const [roles, why] of coPartitioned) {
    const [first, ...rest] = roles.map(topicOf);
    for (const t of rest) if (count.get(t) !== count.get(first!)) problems.push(`${t} has ${count.get(t)} partitions but ${first} has ${count.get(first!)} (${why})`);
  }
  for (const s of specs) if (SINGLE_PARTITION.has(s.role) && count.get(s.topic) !== 1) problems.push(`${s.topic} has ${count.get(s.topic)} partitions; it needs exactly 1`);
  const compacted = specs.filter((s) => s.config['cleanup.policy'] === 'compact');
  const described = await admin.describeConfigs({ includeSynonyms: false, resources: compacted.map((s) => ({ type: TOPIC_RESOURCE, name: s.topic, configNames: ['cleanup.policy'] })) });
  for (const r of described.resources) {
    const policy = r.configEntries.find((e) => e.configName === 'cleanup.policy')?.configValue ?? '';
    if (!policy.split(',').includes('compact')) problems.push(`${r.resourceName} has cleanup.policy=${policy || '(unknown)'}; it must be compact (a changelog or the rules topic keeps its latest value per key for ever)`);
  }
  return problems;
}

export async function registerContracts(registry: RegistryClient, topicName: (role: keyof typeof Topics) => string = (r) => Topics[r]): Promise<Record<string, number>> {
  const ids: Record<string, number> = {};
  for (const [role, topic] of Object.entries(Topics) as [keyof typeof Topics, string][]) {
    const contract = TopicContracts[topic];
    if (!contract) continue;
    const subject = valueSubject(topicName(role));
    await registry.setCompatibility(subject, COMPATIBILITY);
    ids[subject] = await registry.register(subject, AvroSchemas[contract]);
  }
  return ids;
}
