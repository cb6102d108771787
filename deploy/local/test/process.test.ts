// The start/stop lifecycle shared by Kafka and the registry, exercised with small Node processes in
// place of the JVMs (same pid files, markers, port checks, readiness and stop logic).
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ProcessSpec } from '../src/component.js';
import { processStatus, startProcess, stopComponentProcess } from '../src/component.js';
import { resolveConfig } from '../src/config.js';
import type { ResolvedConfig } from '../src/config.js';
import { PortInUseError, ProcessStartError, ReadinessTimeoutError } from '../src/errors.js';
import { isAlive, isPortFree, isRunning, processMarker, readPidFile, spawnDetached, withLock } from '../src/process.js';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

type Behaviour = 'serve' | 'exit' | 'never-ready' | 'ignore-term';

/** A child that listens on `port` (ready) after a short delay, as a JVM would. */
function script(port: number, behaviour: Behaviour): string {
  return `
    console.log('fake service starting on ${port}');
    if (${JSON.stringify(behaviour)} === 'exit') { console.error('fatal: bad config'); process.exit(3); }
    if (${JSON.stringify(behaviour)} === 'ignore-term') process.on('SIGTERM', () => console.log('ignoring SIGTERM'));
    if (${JSON.stringify(behaviour)} !== 'never-ready') {
      setTimeout(() => require('node:net').createServer((s) => s.end()).listen(${port}, '127.0.0.1'), 200);
    }
    setInterval(() => {}, 1000);
  `;
}

const spawned: number[] = [];

afterEach(() => {
  for (const pid of spawned.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

function setup(behaviour: Behaviour, port: number, overrides: Partial<ResolvedConfig> = {}) {
  const root = mkdtempSync(path.join(tmpdir(), 'stack-proc-'));
  const cfg = { ...resolveConfig({ rootDir: root, startTimeoutMs: 8_000, stopGraceMs: 1_000 }), ...overrides };
  const logPath = path.join(cfg.paths.logs, 'fake.log');
  const spec: ProcessSpec = {
    name: 'kafka',
    pidFile: path.join(cfg.paths.run, 'fake.pid'),
    logPath,
    outPath: logPath,
    ports: [port],
    host: '127.0.0.1',
    probe: (timeoutMs) =>
      new Promise<void>((resolve, reject) => {
        const socket = net.connect({ port, host: '127.0.0.1', timeout: timeoutMs });
        socket.once('connect', () => {
          socket.destroy();
          resolve();
        });
        socket.once('error', reject);
        socket.once('timeout', () => reject(new Error('timeout')));
      }),
    launch: async () => {
      const { pid } = spawnDetached(
        process.execPath,
        ['-e', script(port, behaviour), '--', ...processMarker(cfg.rootDir, 'kafka')],
        { cwd: root, outFile: logPath },
      );
      spawned.push(pid);
      return pid;
    },
  };
  return { cfg, spec };
}

const base = { name: 'kafka' as const, version: 'test', port: 0, url: 'x' };

describe('component lifecycle', () => {
  it('starts, is idempotent, reports status, and stops', async () => {
    const port = await freePort();
    const { cfg, spec } = setup('serve', port);
    expect(await startProcess(cfg, spec)).toBe('started');
    const pid = readPidFile(spec.pidFile);
    expect(pid).toBeDefined();
    expect(await startProcess(cfg, spec)).toBe('already-running');
    expect(readPidFile(spec.pidFile)).toBe(pid);

    const running = await processStatus(cfg, spec, base);
    expect(running).toMatchObject({ state: 'running', pid });
    expect(running.rssBytes).toBeGreaterThan(0);

    expect(await stopComponentProcess(cfg, spec)).toBe('stopped');
    expect(isRunning(pid as number)).toBe(false);
    expect(existsSync(spec.pidFile)).toBe(false);
    expect(await processStatus(cfg, spec, base)).toMatchObject({ state: 'stopped' });
    expect(await stopComponentProcess(cfg, spec)).toBe('not-running');
  });

  it('replaces a stale pid file (dead pid, or a live pid that is not ours)', async () => {
    const port = await freePort();
    const { cfg, spec } = setup('serve', port);
    mkdirSync(path.dirname(spec.pidFile), { recursive: true });
    for (const stale of [2_147_000_000, process.pid]) {
      writeFileSync(spec.pidFile, `${stale}\n`);
      expect(await startProcess(cfg, spec)).toBe('started');
      expect(readPidFile(spec.pidFile)).not.toBe(stale);
      await stopComponentProcess(cfg, spec);
    }
    expect(isAlive(process.pid)).toBe(true);
  });

  it('finds its running process when the pid file is gone', async () => {
    const port = await freePort();
    const { cfg, spec } = setup('serve', port);
    await startProcess(cfg, spec);
    const pid = readPidFile(spec.pidFile);
    writeFileSync(spec.pidFile, '');
    expect(await processStatus(cfg, spec, base)).toMatchObject({ state: 'running', pid });
    expect(await stopComponentProcess(cfg, spec)).toBe('stopped');
    expect(isRunning(pid as number)).toBe(false);
  });

  it('refuses a port taken by another process, naming the port', async () => {
    const port = await freePort();
    const squatter = net.createServer().listen(port, '127.0.0.1');
    await new Promise((r) => squatter.once('listening', r));
    try {
      const { cfg, spec } = setup('serve', port);
      const error = await startProcess(cfg, spec).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PortInUseError);
      expect((error as Error).message).toContain(`port ${port} in use by another process`);
      expect(await isPortFree(port, '127.0.0.1')).toBe(false);
    } finally {
      squatter.close();
    }
  });

  it('reports a process that dies while starting, with its log', async () => {
    const { cfg, spec } = setup('exit', await freePort());
    const error = await startProcess(cfg, spec).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProcessStartError);
    expect((error as Error).message).toContain(spec.logPath);
    expect((error as Error).message).toContain('fatal: bad config');
    expect(existsSync(spec.pidFile)).toBe(false);
  });

  it('times out naming the log path and its last lines', async () => {
    const { cfg, spec } = setup('never-ready', await freePort(), { startTimeoutMs: 1_500 });
    const error = await startProcess(cfg, spec).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReadinessTimeoutError);
    expect((error as Error).message).toContain(spec.logPath);
    expect((error as Error).message).toContain('fake service starting');
    await stopComponentProcess(cfg, spec);
  });

  it('kills a process that ignores SIGTERM after the grace period', async () => {
    const { cfg, spec } = setup('ignore-term', await freePort());
    await startProcess(cfg, spec);
    const pid = readPidFile(spec.pidFile) as number;
    const started = Date.now();
    expect(await stopComponentProcess(cfg, spec)).toBe('stopped');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(isRunning(pid)).toBe(false);
  });
});

describe('withLock', () => {
  it('runs holders one at a time', async () => {
    const lock = path.join(mkdtempSync(path.join(tmpdir(), 'stack-lock-')), 'run', 'stack.lock');
    const events: string[] = [];
    const holder = (name: string) =>
      withLock(lock, 5_000, async () => {
        events.push(`${name}:in`);
        await new Promise((r) => setTimeout(r, 100));
        events.push(`${name}:out`);
      });
    await Promise.all([holder('a'), holder('b')]);
    expect(events).toHaveLength(4);
    expect(events[0]?.endsWith(':in') && events[1]?.endsWith(':out')).toBe(true);
    expect(existsSync(lock)).toBe(false);
  });

  it('takes over a lock left by a dead process', async () => {
    const lock = path.join(mkdtempSync(path.join(tmpdir(), 'stack-lock-')), 'stack.lock');
    writeFileSync(lock, '2147000000\n');
    expect(await withLock(lock, 1_000, async () => 'ran')).toBe('ran');
  });
});
