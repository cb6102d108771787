// What most commands need: configuration from the environment, a logger, Kafka and the registry.
import { kafkaConfig, registryConfig, type Env } from '@tillwatch/config';
import { topicNames } from '@tillwatch/schemas';
import { createKafka, createRegistryClient } from '@tillwatch/stream';
import { createLogger } from '@tillwatch/telemetry';

export function createContext(env: Env = process.env, service = 'cli') {
  const kafkaCfg = kafkaConfig(env);
  const registryCfg = registryConfig(env);
  const level = (env.LOG_LEVEL as 'info' | undefined) ?? 'warn';
  // Logs go to stderr so command output (JSON lines, summaries) stays clean on stdout.
  const logger = createLogger({ service, level, destination: process.stderr });
  return {
    env,
    logger,
    kafkaCfg,
    registryCfg,
    /** Topic names under TOPIC_PREFIX (the catalogue's names when unset). */
    topics: topicNames(kafkaCfg.topicPrefix),
    kafka: createKafka({ config: kafkaCfg, logger, clientId: `tillwatch-${service}` }),
    registry: createRegistryClient(registryCfg),
  };
}
export type Context = ReturnType<typeof createContext>;
