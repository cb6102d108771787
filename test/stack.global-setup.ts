// Integration tests run against the real local stack (Kafka, Apicurio Registry; ClickHouse is
// embedded per test process). Started here if it is not running, and stopped afterwards only if
// this run started it. With KAFKA_BROKERS / SCHEMA_REGISTRY_URL set, the tests use that
// infrastructure instead and nothing is started.
import { fileURLToPath } from 'node:url';
import { startStackForTests } from '@tillwatch/local-stack';

export default async function setup(): Promise<() => Promise<void>> {
  if (process.env.KAFKA_BROKERS || process.env.SCHEMA_REGISTRY_URL) return async () => {};
  return startStackForTests({
    rootDir: fileURLToPath(new URL('..', import.meta.url)),
    logger: (level, message) => {
      if (level !== 'debug') console.error(`[stack] ${message}`);
    },
  });
}
