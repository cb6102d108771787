// The local stack as the CLI uses it: Kafka + Apicurio from deploy/local, ClickHouse embedded
// (in the process that runs the sink/API) or a server from CLICKHOUSE_URL.
import { clickhouseConfig, type Env } from '@tillwatch/config';
import { createClickHouse } from '@tillwatch/clickhouse';
import { createLocalStack, formatStatus, type LocalStack } from '@tillwatch/local-stack';
import { repoRoot } from './paths.js';

export function localStack(verbose = Boolean(process.env.TILLWATCH_DEBUG)): LocalStack {
  return createLocalStack({
    rootDir: repoRoot,
    logger: (level, message) => {
      if (level !== 'debug' || verbose) console.error(`[stack] ${message}`);
    },
  });
}

/** The local stack serves only when no external Kafka / registry is configured. */
export function usesLocalStack(env: Env = process.env): boolean {
  return !env.KAFKA_BROKERS && !env.SCHEMA_REGISTRY_URL;
}

export async function clickhouseStatusLine(env: Env = process.env): Promise<string> {
  const c = clickhouseConfig(env);
  if (c.url) {
    const ch = createClickHouse({ url: c.url, database: c.database, username: c.username, password: c.password });
    try {
      return `clickhouse  server ${await ch.version()}  ${c.url}  database ${c.database}  running`;
    } catch (e) {
      return `clickhouse  server ${c.url}  unreachable: ${(e as Error).message}`;
    } finally {
      await ch.close();
    }
  }
  // Ask the embedded engine its version in a scratch directory: the data path itself belongs to
  // whichever process runs the pipeline, and must never be opened by two processes.
  const ch = createClickHouse({ path: ':memory:', database: c.database });
  try {
    return `clickhouse  embedded chDB ${await ch.version()}  path ${c.path}  database ${c.database}  (in-process, no port)`;
  } finally {
    await ch.close();
  }
}

export { formatStatus };
