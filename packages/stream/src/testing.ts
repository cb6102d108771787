// Helpers for integration tests against the real local stack: every test gets its own random
// topics, consumer groups and registry subjects, so tests never see each other's data.
import { createServer } from 'node:net';
import { kafkaConfig, registryConfig } from '@tillwatch/config';
import { createLogger } from '@tillwatch/telemetry';
import { createKafka } from './kafka/client.js';
import { createRegistryClient } from './registry/client.js';

export { randomId, randomTopics } from './scoped-topics.js';

export function testKafka(service = 'it') {
  const logger = createLogger({ service, level: (process.env.TEST_LOG_LEVEL as 'warn' | undefined) ?? 'error', destination: process.stderr });
  const config = kafkaConfig(process.env);
  return { kafka: createKafka({ config, logger, service }), logger, config, registry: createRegistryClient(registryConfig(process.env)) };
}

/** A loopback port nothing listens on (bound, then closed): a dependency that is down. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}
