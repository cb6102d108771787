// Run-scoped topic names: tests and `tillwatch replay` use their own copies of every topic,
// so they never mix with the standing pipeline or with each other.
import { randomBytes } from 'node:crypto';
import type { Admin, Kafka } from 'kafkajs';
import { topicNames, type TopicRole } from '@tillwatch/schemas';
import { provisionTopics, registerContracts } from './provision.js';
import type { RegistryClient } from './registry/client.js';

export const randomId = (prefix = 't'): string => `${prefix}-${randomBytes(5).toString('hex')}`;

/** Topic names under a prefix (random by default), for every role of the catalogue. */
export const randomTopics = (prefix = randomId('it')): Record<TopicRole, string> => topicNames(prefix);

/** Creates every topic of the catalogue under a prefix and registers their contracts (tests, load tests). */
export async function provisionScopedTopics(kafka: Kafka, registry: RegistryClient, partitions: number, prefix?: string): Promise<Record<TopicRole, string>> {
  const topics = randomTopics(prefix);
  const admin = kafka.admin();
  await admin.connect();
  try {
    await provisionTopics(admin, { partitions, replicationFactor: 1, topicName: (r) => topics[r] });
  } finally {
    await admin.disconnect();
  }
  await registerContracts(registry, (r) => topics[r]);
  return topics;
}

/** True once the group's committed offsets reach the end of every partition of the topic. */
export async function groupCaughtUp(admin: Admin, groupId: string, topic: string): Promise<boolean> {
  const [ends, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId, topics: [topic] })]);
  const c = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
  return ends.every((e) => BigInt(e.high) === 0n || (c.get(e.partition) ?? -1n) >= BigInt(e.high));
}

/** Deletes the given topics; missing ones are ignored (cleanup of tests, load tests, replays). */
export async function deleteScopedTopics(kafka: Kafka, topics: Record<string, string>): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => undefined);
  } finally {
    await admin.disconnect();
  }
}

/** Polls until the group's committed offsets reach the end of the topic, or throws after timeoutMs. */
export async function waitGroupCaughtUp(admin: Admin, groupId: string, topic: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await groupCaughtUp(admin, groupId, topic))) {
    if (Date.now() > deadline) {
      throw new Error(`group ${groupId} did not reach the end of ${topic} within ${timeoutMs} ms (committed: ${JSON.stringify(await admin.fetchOffsets({ groupId, topics: [topic] }))})`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
