// What most commands need: configuration from the environment, a logger, Kafka and the registry.
import { clickhouseConfig, kafkaConfig, parseAll, registryConfig, type ClickHouseConfig, type Env } from '@tillwatch/config';
import type { ClickHouse } from '@tillwatch/clickhouse';
import { topicNames } from '@tillwatch/schemas';
import { TopicMissingError, checkClickHouseReachable, checkStreamDependencies, createKafka, createRegistryClient } from '@tillwatch/stream';
import { createLogger } from '@tillwatch/telemetry';

export function createContext(env: Env = process.env, service = 'cli', o: { clickhouse?: boolean } = {}) {
  // Every wrong variable at once, not one per run (ClickHouse's too, for commands that use it).
  const noClickHouse = (): ClickHouseConfig | undefined => undefined;
  const { kafka: kafkaCfg, registry: registryCfg, clickhouse: clickhouseCfg } = parseAll({ kafka: kafkaConfig, registry: registryConfig, clickhouse: o.clickhouse ? clickhouseConfig : noClickHouse }, env);
  const level = (env.LOG_LEVEL as 'info' | undefined) ?? 'warn';
  // Logs go to stderr so command output (JSON lines, summaries) stays clean on stdout.
  const logger = createLogger({ service, level, destination: process.stderr });
  return {
    env,
    logger,
    kafkaCfg,
    registryCfg,
    /** Parsed when asked for (createContext(env, service, { clickhouse: true })). */
    clickhouseCfg,
    /** Topic names under TOPIC_PREFIX (the catalogue's names when unset). */
    topics: topicNames(kafkaCfg.topicPrefix),
    kafka: createKafka({ config: kafkaCfg, logger, service }),
    registry: createRegistryClient(registryCfg),
  };
}
export type Context = ReturnType<typeof createContext>;

/**
 * Before a command talks to its dependencies: each one it needs answers, or ONE line within
 * seconds naming it, its address and how to start it (DependencyUnavailableError), instead of
 * kafkajs retrying for half a minute. ClickHouse is checked when it is a server (CLICKHOUSE_URL).
 */
export async function checkReachable(ctx: Context, o: { registry?: boolean; clickhouse?: { ch: ClickHouse; url: string | undefined } } = {}): Promise<void> {
  await Promise.all([
    checkStreamDependencies({ kafka: ctx.kafkaCfg, ...(o.registry !== false ? { registry: ctx.registry } : {}) }),
    o.clickhouse?.url ? checkClickHouseReachable(o.clickhouse.ch, o.clickhouse.url) : Promise.resolve(),
  ]);
}

/** The topics exist, or a TopicMissingError naming the first missing one and `tillwatch provision`. */
export async function checkTopicsExist(ctx: Context, topics: string[]): Promise<void> {
  const admin = ctx.kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.find((t) => !existing.has(t));
    if (missing) throw new TopicMissingError(missing, ctx.kafkaCfg.brokers.join(','));
  } finally {
    await admin.disconnect();
  }
}
