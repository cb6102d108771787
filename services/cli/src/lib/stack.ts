// The local stack as the CLI uses it: Kafka + Apicurio from deploy/local, ClickHouse embedded
// (in the process that runs the sink/API) or a server from CLICKHOUSE_URL.
import { clickhouseConfig, type Env } from '@tillwatch/config';
import { createClickHouse } from '@tillwatch/clickhouse';
import { createLocalStack, formatStatus, type ComponentName, type LocalStack } from '@tillwatch/local-stack';
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

/**
 * The local stack as one command uses it: it owns (and stops on exit) only the components it
 * started itself; components that were already running (another `npm start`, `tillwatch stack up`,
 * CI) are left running, whatever way the command ends.
 */
export interface StackLease {
  /** Started by this command: stopped by release(). */
  readonly started: readonly ComponentName[];
  /** Running before this command: never stopped by it. */
  readonly alreadyRunning: readonly ComponentName[];
  /** One line saying what was started and what was found running. */
  describe(): string;
  /** Stop what this command started (unless `keep`); resolves one line saying what was stopped and what is left running. Idempotent. */
  release(options?: { keep?: boolean }): Promise<string>;
}

const list = (names: readonly string[]) => names.join(', ');

export async function acquireLocalStack(stack: LocalStack): Promise<StackLease> {
  // What runs before: if up() fails half-way (one component started, the other not), whatever is
  // running afterwards and was not before is ours to stop.
  const before = new Set((await stack.status()).components.filter((c) => c.state !== 'stopped').map((c) => c.name));
  let started: ComponentName[];
  let alreadyRunning: ComponentName[];
  try {
    const up = await stack.up();
    const entries = Object.entries(up.components) as [ComponentName, string][];
    started = entries.filter(([, r]) => r === 'started').map(([n]) => n);
    alreadyRunning = entries.filter(([, r]) => r === 'already-running').map(([n]) => n);
  } catch (e) {
    const now = (await stack.status()).components.filter((c) => c.state !== 'stopped').map((c) => c.name);
    const ours = now.filter((n) => !before.has(n));
    if (ours.length) {
      await stack.down({ only: ours });
      console.error(`local stack: start failed; stopped ${list(ours)} (started by this command)${before.size ? `, left ${list([...before])} running (already running before)` : ''}`);
    }
    throw e;
  }
  let released: Promise<string> | undefined;
  return {
    started,
    alreadyRunning,
    describe: () =>
      [started.length ? `started ${list(started)} (stopped on exit)` : '', alreadyRunning.length ? `${list(alreadyRunning)} already running (left running on exit)` : '']
        .filter(Boolean)
        .join('; '),
    release(options = {}) {
      released ??= (async () => {
        const parts: string[] = [];
        if (started.length && !options.keep) {
          await stack.down({ only: started });
          parts.push(`stopped ${list(started)} (started by this command)`);
        } else if (started.length) {
          parts.push(`left ${list(started)} running (--keep-stack; stop with: npx tillwatch stack down)`);
        }
        if (alreadyRunning.length) parts.push(`left ${list(alreadyRunning)} running (already running before this command)`);
        return `local stack: ${parts.join('; ')}`;
      })();
      return released;
    },
  };
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
