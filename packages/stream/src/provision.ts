// Provisioning: topics with their partitions and configs, and every contract registered under its
// subject with the BACKWARD compatibility policy. Safe to rerun.
import type { Admin } from 'kafkajs';
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
  // The detector's changelog must be co-partitioned with its input: check what already existed.
  const meta = await admin.fetchTopicMetadata({ topics: [name('transactions'), name('detectorChangelog')] });
  const counts = meta.topics.map((t) => [t.name, t.partitions.length] as const);
  if (counts.length === 2 && counts[0]![1] !== counts[1]![1]) {
    throw new FatalError(`${counts[0]![0]} has ${counts[0]![1]} partitions but ${counts[1]![0]} has ${counts[1]![1]}: the changelog must be co-partitioned with its input topic`);
  }
  return { created: toCreate.map((s) => s.topic), existing: specs.filter((s) => existingTopics.has(s.topic)).map((s) => s.topic) };
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
