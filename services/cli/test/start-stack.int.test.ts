// `npm start` (commands/start.ts) stops on exit only the stack components it started itself, and
// says which it leaves running - for each way it ends: `--seconds N`, a signal (SIGINT), a fatal
// error at start. The real start command and the real local-stack code run against a PRIVATE stack:
// a temporary root (so its pid files and JVM markers are its own) on free ports, with the
// repository's cached artifacts linked in. The shared stack on the default ports is never touched:
// every stop goes through this temporary root, which only knows its own JVMs.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openEmbeddedPaths } from '@tillwatch/clickhouse';
import { randomDatabaseName, testDataPath } from '@tillwatch/clickhouse/testing';
import { createLocalStack, type LocalStack } from '@tillwatch/local-stack';
import { run } from '../src/commands/start.js';
import { repoRoot } from '../src/lib/paths.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** n distinct free ports: every listener stays open until all are taken (one closed first could be handed out again). */
async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = createServer();
      servers.push(s);
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    }
    return servers.map((s) => (s.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

let root: string;
let stack: LocalStack;
const lines: string[] = [];

beforeAll(async () => {
  // The artifacts (Kafka, Apicurio) of the repository's stack, fetched once (a no-op when cached).
  const shared = createLocalStack({ rootDir: repoRoot });
  await shared.fetch();
  root = mkdtempSync(path.join(tmpdir(), 'tillwatch-start-'));
  mkdirSync(path.join(root, '.stack'), { recursive: true });
  symlinkSync(shared.config.paths.artifacts, path.join(root, '.stack', 'artifacts'), 'dir');
  const [kafka, controller, registry, management] = await freePorts(4);
  stack = createLocalStack({
    rootDir: root,
    kafka: { port: kafka!, controllerPort: controller!, heapMb: 384 },
    registry: { port: registry!, managementPort: management!, storage: 'memory', heapMb: 256 },
    stopGraceMs: 15_000,
  });
  vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
    lines.push(args.map(String).join(' '));
  });
});

afterAll(async () => {
  vi.restoreAllMocks();
  // Only the private stack: its root is the temporary directory.
  if (stack) await stack.down();
  if (root) rmSync(root, { recursive: true, force: true });
  // The runs' embedded ClickHouse (each closes its handle on exit, as npm start does).
  if (!openEmbeddedPaths().includes(testDataPath())) rmSync(testDataPath(), { recursive: true, force: true });
});

const env = () => ({ CLICKHOUSE_PATH: testDataPath(), CLICKHOUSE_DATABASE: randomDatabaseName('start'), HTTP_PORT: '0', API_OPS_PORT: '0', LOG_LEVEL: 'error' });
const deps = () => ({ stack, env: env(), opsPorts: { detector: 0, sink: 0, api: 0 } });
const states = async () => Object.fromEntries((await stack.status()).components.map((c) => [c.name, c.state]));
const said = (re: RegExp) => lines.some((l) => re.test(l));

describe('npm start and the local stack', () => {
  it('started by npm start: --seconds N ends it and stops both components', async () => {
    expect(await states()).toEqual({ kafka: 'stopped', registry: 'stopped' });
    lines.length = 0;
    expect(await run(['--seconds', '1', '--no-simulator'], deps())).toBe(0);
    expect(said(/local stack: started kafka, registry \(stopped on exit\)/)).toBe(true);
    expect(said(/local stack: stopped kafka, registry \(started by this command\)/)).toBe(true);
    expect(await states()).toEqual({ kafka: 'stopped', registry: 'stopped' });
  });

  it('already running: Ctrl-C (SIGINT) and a fatal error at start leave both running, and say so', async () => {
    await stack.up();
    // SIGINT once the pipeline runs.
    lines.length = 0;
    const running = run(['--no-simulator'], deps());
    for (const deadline = Date.now() + 120_000; !said(/live alerts/) && Date.now() < deadline; ) await sleep(100);
    expect(said(/live alerts/)).toBe(true);
    process.emit('SIGINT');
    expect(await running).toBe(0);
    expect(said(/local stack: kafka, registry already running \(left running on exit\)/)).toBe(true);
    expect(said(/local stack: left kafka, registry running \(already running before this command\)/)).toBe(true);
    expect(await states()).toEqual({ kafka: 'running', registry: 'running' });

    // A fatal error at start: the API's port is taken (after the detector and the sink started).
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    try {
      lines.length = 0;
      const busy = String((blocker.address() as { port: number }).port);
      await expect(run(['--no-simulator'], { ...deps(), env: { ...env(), HTTP_PORT: busy } })).rejects.toThrow(/EADDRINUSE/);
      expect(said(/local stack: left kafka, registry running \(already running before this command\)/)).toBe(true);
      expect(await states()).toEqual({ kafka: 'running', registry: 'running' });
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  it('one of each: stops the registry it started, leaves the Kafka it found running', async () => {
    await stack.down({ only: ['registry'] });
    expect(await states()).toEqual({ kafka: 'running', registry: 'stopped' });
    lines.length = 0;
    expect(await run(['--seconds', '1', '--no-simulator'], deps())).toBe(0);
    expect(said(/local stack: stopped registry \(started by this command\); left kafka running \(already running before this command\)/)).toBe(true);
    expect(await states()).toEqual({ kafka: 'running', registry: 'stopped' });
  });
});
