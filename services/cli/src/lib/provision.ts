// Provisioning of everything the pipeline needs; safe to rerun.
import { migrate, type ClickHouse } from '@tillwatch/clickhouse';
import { clickhouseMigrationsDir, type TopicRole } from '@tillwatch/schemas';
import { provisionTopics, registerContracts } from '@tillwatch/stream';
import type { Context } from './context.js';

export interface ProvisionReport {
  topicsCreated: string[];
  topicsExisting: string[];
  subjects: Record<string, number>;
  migrationsApplied: string[];
  migrationsSkipped: string[];
}

export async function provisionKafka(ctx: Context, topicName: (role: TopicRole) => string = (role) => ctx.topics[role]) {
  const admin = ctx.kafka.admin();
  await admin.connect();
  try {
    const topics = await provisionTopics(admin, { partitions: ctx.kafkaCfg.partitions, replicationFactor: ctx.kafkaCfg.replicationFactor, topicName });
    const subjects = await registerContracts(ctx.registry, topicName);
    return { topics, subjects };
  } finally {
    await admin.disconnect();
  }
}

export async function provisionAll(ctx: Context, ch: ClickHouse): Promise<ProvisionReport> {
  const { topics, subjects } = await provisionKafka(ctx);
  const m = await migrate(ch, { dir: clickhouseMigrationsDir });
  return { topicsCreated: topics.created, topicsExisting: topics.existing, subjects, migrationsApplied: m.applied, migrationsSkipped: m.skipped };
}
