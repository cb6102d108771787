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

export interface ClickHouseStatus {
  kind: 'server' | 'embedded';
  /** Server URL, or the embedded data path. */
  address: string;
  database: string;
  version: string | null;
  state: 'running' | 'unreachable' | 'in-process';
  detail?: string;
}

export async function clickhouseStatus(env: Env = process.env): Promise<ClickHouseStatus> {
  const c = clickhouseConfig(env);
  if (c.url) {
    const ch = createClickHouse({ url: c.url, database: c.database, username: c.username, password: c.password });
    try {
      return { kind: 'server', address: c.url, database: c.database, version: await ch.version(), state: 'running' };
    } catch (e) {
      return { kind: 'server', address: c.url, database: c.database, version: null, state: 'unreachable', detail: (e as Error).message };
    } finally {
      await ch.close();
    }
  }
  // Ask the embedded engine its version in a scratch directory: the data path itself belongs to
  // whichever process runs the pipeline, and must never be opened by two processes.
  const ch = createClickHouse({ path: ':memory:', database: c.database });
  try {
    return { kind: 'embedded', address: c.path, database: c.database, version: await ch.version(), state: 'in-process' };
  } finally {
    await ch.close();
  }
}

export function formatClickHouseStatus(s: ClickHouseStatus): string {
  if (s.kind === 'server') {
    return s.state === 'running' ? `clickhouse  server ${s.version}  ${s.address}  database ${s.database}  running` : `clickhouse  server ${s.address}  unreachable: ${s.detail}`;
  }
  return `clickhouse  embedded chDB ${s.version}  path ${s.address}  database ${s.database}  (in-process, no port)`;
}

export async function clickhouseStatusLine(env: Env = process.env): Promise<string> {
  return formatClickHouseStatus(await clickhouseStatus(env));
}

export { formatStatus };
