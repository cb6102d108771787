// What the stack needs from each of its JVM components, and the start/stop logic they share.
import { setTimeout as sleep } from 'node:timers/promises';
import type { ResolvedConfig } from './config.js';
import { PortInUseError, ProcessStartError, ReadinessTimeoutError } from './errors.js';
import {
  findOurProcesses,
  isOurProcess,
  isPortFree,
  readPidFile,
  removeFile,
  rssBytes,
  stopProcess,
  tail,
  writePidFile,
} from './process.js';

export type ComponentName = 'kafka' | 'registry';
export type ComponentState = 'running' | 'stopped' | 'unhealthy';

export interface ComponentStatus {
  name: ComponentName;
  version: string;
  state: ComponentState;
  /** Main port (Kafka PLAINTEXT listener, registry HTTP). */
  port: number;
  /** How clients reach it: `127.0.0.1:9092` or `http://127.0.0.1:8081/apis/ccompat/v7`. */
  url: string;
  pid?: number;
  /** Resident memory of the JVM (Linux /proc). */
  rssBytes?: number;
  /** The log to read when something is wrong. */
  logPath: string;
  /** Why it is unhealthy (the failed health check). */
  detail?: string;
}

export type StartResult = 'started' | 'already-running';
export type StopResult = 'stopped' | 'not-running';

export interface Component {
  readonly name: ComponentName;
  readonly version: string;
  fetch(): Promise<{ fetched: boolean }>;
  /** Throws PortInUseError when it is not running and one of its ports is taken. */
  preflight(): Promise<void>;
  start(): Promise<StartResult>;
  stop(): Promise<StopResult>;
  status(): Promise<ComponentStatus>;
}

/** What a component supplies so the shared lifecycle below can run it. */
export interface ProcessSpec {
  name: ComponentName;
  pidFile: string;
  /** The log a human should read (named in errors). */
  logPath: string;
  /** Where the JVM's stdout/stderr go (may equal logPath). */
  outPath: string;
  /** Every port the process binds on `host`. */
  ports: readonly number[];
  host: string;
  /** Resolves when the service answers as ready; throws (any error) when not yet. */
  probe(timeoutMs: number): Promise<void>;
  /** Spawns the process (detached) and returns its pid. */
  launch(): Promise<number>;
  /** Runs once after the first successful probe of a fresh start (e.g. Kafka warm-up). */
  afterReady?(deadline: number): Promise<void>;
}

/** Our live process for this component: from the pid file, or found on /proc if the file is gone. */
export function livePid(cfg: ResolvedConfig, spec: ProcessSpec): number | undefined {
  const fromFile = readPidFile(spec.pidFile);
  if (fromFile !== undefined) {
    if (isOurProcess(fromFile, cfg.rootDir, spec.name)) return fromFile;
    cfg.logger('info', `${spec.name}: removing stale pid file (pid ${fromFile} is not a running ${spec.name} of this stack)`);
    removeFile(spec.pidFile);
  }
  const found = findOurProcesses(cfg.rootDir, spec.name)[0];
  if (found !== undefined) {
    cfg.logger('info', `${spec.name}: adopting running pid ${found} (pid file was missing)`);
    writePidFile(spec.pidFile, found);
  }
  return found;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function logTail(spec: ProcessSpec): Promise<string> {
  const main = await tail(spec.logPath, 30);
  if (spec.outPath === spec.logPath) return main;
  const out = await tail(spec.outPath, 15);
  return out ? `${main}\n--- ${spec.outPath} ---\n${out}` : main;
}

async function waitUntilReady(cfg: ResolvedConfig, spec: ProcessSpec, pid: number, deadline: number): Promise<void> {
  let lastError: string | undefined;
  for (;;) {
    if (!isOurProcess(pid, cfg.rootDir, spec.name)) {
      removeFile(spec.pidFile);
      throw new ProcessStartError(spec.name, spec.logPath, await logTail(spec), `exited while starting (pid ${pid})`);
    }
    try {
      await spec.probe(Math.max(1_000, Math.min(5_000, deadline - Date.now())));
      return;
    } catch (error) {
      lastError = message(error);
    }
    if (Date.now() >= deadline) {
      throw new ReadinessTimeoutError(spec.name, cfg.startTimeoutMs, spec.logPath, await logTail(spec), lastError);
    }
    await sleep(250);
  }
}

/** When the component is not running, every port it binds must be free. */
export async function checkPorts(cfg: ResolvedConfig, spec: ProcessSpec): Promise<void> {
  if (livePid(cfg, spec) !== undefined) return;
  for (const port of spec.ports) {
    if (!(await isPortFree(port, spec.host))) throw new PortInUseError(spec.name, port, spec.host);
  }
}

export async function startProcess(cfg: ResolvedConfig, spec: ProcessSpec): Promise<StartResult> {
  const deadline = Date.now() + cfg.startTimeoutMs;
  const running = livePid(cfg, spec);
  if (running !== undefined) {
    // Ours and alive: healthy now, or still starting (another `up()`); either way wait for ready.
    cfg.logger('info', `${spec.name}: already running (pid ${running}), checking it is ready`);
    await waitUntilReady(cfg, spec, running, deadline);
    return 'already-running';
  }
  await checkPorts(cfg, spec);
  const pid = await spec.launch();
  writePidFile(spec.pidFile, pid);
  cfg.logger('info', `${spec.name}: started pid ${pid}, waiting until ready (log: ${spec.logPath})`);
  const started = Date.now();
  await waitUntilReady(cfg, spec, pid, deadline);
  if (spec.afterReady) await spec.afterReady(deadline);
  cfg.logger('info', `${spec.name}: ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return 'started';
}

export async function stopComponentProcess(cfg: ResolvedConfig, spec: ProcessSpec): Promise<StopResult> {
  const pid = livePid(cfg, spec);
  if (pid === undefined) return 'not-running';
  cfg.logger('info', `${spec.name}: stopping pid ${pid} (SIGTERM, SIGKILL after ${cfg.stopGraceMs / 1000} s)`);
  const how = await stopProcess(spec.name, pid, cfg.stopGraceMs);
  if (how === 'killed') cfg.logger('warn', `${spec.name}: pid ${pid} ignored SIGTERM and was killed`);
  removeFile(spec.pidFile);
  return 'stopped';
}

export async function processStatus(
  cfg: ResolvedConfig,
  spec: ProcessSpec,
  base: Pick<ComponentStatus, 'name' | 'version' | 'port' | 'url'>,
): Promise<ComponentStatus> {
  const pidFromFile = readPidFile(spec.pidFile);
  const pid =
    pidFromFile !== undefined && isOurProcess(pidFromFile, cfg.rootDir, spec.name)
      ? pidFromFile
      : findOurProcesses(cfg.rootDir, spec.name)[0];
  const logPath = spec.logPath;
  if (pid === undefined) return { ...base, state: 'stopped', logPath };
  const rss = rssBytes(pid);
  try {
    await spec.probe(3_000);
    return { ...base, state: 'running', pid, logPath, ...(rss !== undefined ? { rssBytes: rss } : {}) };
  } catch (error) {
    return {
      ...base,
      state: 'unhealthy',
      pid,
      logPath,
      detail: message(error),
      ...(rss !== undefined ? { rssBytes: rss } : {}),
    };
  }
}
