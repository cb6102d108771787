// Process plumbing: detached JVMs with pid files, liveness, graceful stop, port checks, log tails,
// and a lock so two `up()` calls (two terminals, two vitest workers) do not start two brokers.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ProcessStopError, StackLockedError } from './errors.js';

/** Marks our JVMs on their command line, so a recycled pid is never mistaken for one of them. */
export function processMarker(rootDir: string, component: string): string[] {
  return [`-Dtillwatch.stack.component=${component}`, `-Dtillwatch.stack.root=${rootDir}`];
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function cmdline(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return undefined;
  }
}

/** True when `pid` is alive and (where /proc exists) carries our marker for `component`. */
export function isOurProcess(pid: number, rootDir: string, component: string): boolean {
  if (!isAlive(pid)) return false;
  if (!existsSync('/proc/self/cmdline')) return true; // no /proc (macOS): trust the pid file
  const args = cmdline(pid);
  if (!args) return false;
  // A zombie (exited, not yet reaped by its parent) has an empty cmdline: not running.
  const marker = processMarker(rootDir, component);
  return marker.every((m) => args.includes(m));
}

/** Pids of our JVMs for `component` found by scanning /proc (used when the pid file is gone). */
export function findOurProcesses(rootDir: string, component: string): number[] {
  if (!existsSync('/proc/self/cmdline')) return [];
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    if (isOurProcess(pid, rootDir, component)) pids.push(pid);
  }
  return pids;
}

export function readPidFile(file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function writePidFile(file: string, pid: number): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${pid}\n`);
}

export function removeFile(file: string): void {
  rmSync(file, { force: true });
}

/** Resident set size of `pid` in bytes, from /proc (undefined elsewhere). */
export function rssBytes(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m?.[1] ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

export interface SpawnedProcess {
  pid: number;
}

/**
 * Starts `command` detached from this Node process (its own process group, stdio to `outFile`), so
 * it outlives the CLI that started it. The previous `outFile` is kept as `<outFile>.1`.
 */
export function spawnDetached(
  command: string,
  args: readonly string[],
  opts: { cwd: string; outFile: string; env?: NodeJS.ProcessEnv },
): SpawnedProcess {
  mkdirSync(path.dirname(opts.outFile), { recursive: true });
  rotate(opts.outFile);
  const fd = openSync(opts.outFile, 'a');
  try {
    const child = spawn(command, args, {
      cwd: opts.cwd,
      detached: true,
      stdio: ['ignore', fd, fd],
      env: opts.env ?? process.env,
    });
    if (child.pid === undefined) throw new Error(`could not spawn ${command}`);
    // An 'error' event (ENOENT...) after spawn must not crash the caller; liveness checks report it.
    child.on('error', () => {});
    child.unref();
    return { pid: child.pid };
  } finally {
    closeSync(fd);
  }
}

/** Keeps one previous generation of a log file. */
export function rotate(file: string): void {
  if (existsSync(file) && statSync(file).size > 0) renameSync(file, `${file}.1`);
}

/** Waits until `pid` is gone or `timeoutMs` passed; true when it is gone. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isRunning(pid)) return true;
    await sleep(100);
  }
  return !isRunning(pid);
}

/**
 * Alive and not a zombie. A child that exited stays a zombie until its parent reaps it: the parent
 * is the Node process that started it, until that process exits.
 */
export function isRunning(pid: number): boolean {
  if (!isAlive(pid)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 3, after the parenthesised command name, is the state; Z = zombie.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

/** SIGTERM, wait up to `graceMs`, then SIGKILL and wait again. */
export async function stopProcess(component: string, pid: number, graceMs: number): Promise<'terminated' | 'killed'> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return 'terminated';
  }
  if (await waitForExit(pid, graceMs)) return 'terminated';
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return 'killed';
  }
  if (await waitForExit(pid, 10_000)) return 'killed';
  throw new ProcessStopError(component, pid);
}

/** True when nothing listens on host:port (we can bind it ourselves). */
export function isPortFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.once('listening', () => server.close(() => resolve(true)));
    // exclusive: do not share a handle with cluster workers; a plain bind test.
    server.listen({ port, host, exclusive: true });
  });
}

/** The last `lines` lines of a text file ('' when missing); reads at most the last 64 KiB. */
export async function tail(file: string, lines = 30): Promise<string> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch {
    return '';
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, 64 * 1024);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    const text = buffer.toString('utf8').replace(/\s+$/, '');
    return text.split('\n').slice(-lines).join('\n');
  } finally {
    await handle.close();
  }
}

/**
 * Runs `fn` holding an exclusive lock file (O_EXCL). A lock whose holder pid is dead is taken over.
 * Waits up to `waitMs` for a live holder.
 */
export async function withLock<T>(lockPath: string, waitMs: number, fn: () => Promise<T>): Promise<T> {
  mkdirSync(path.dirname(lockPath), { recursive: true });
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const fd = openSync(lockPath, 'wx');
      writeFileSync(fd, `${process.pid}\n`);
      closeSync(fd);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = readPidFile(lockPath);
      if (holder === undefined || !isAlive(holder)) {
        // Stale (holder died) or unreadable (being written right now: give it a moment).
        if (holder !== undefined || Date.now() - safeMtime(lockPath) > 2_000) removeFile(lockPath);
        await sleep(50);
        continue;
      }
      if (Date.now() > deadline) throw new StackLockedError(lockPath, holder);
      await sleep(200);
    }
  }
  try {
    return await fn();
  } finally {
    if (readPidFile(lockPath) === process.pid) removeFile(lockPath);
  }
}

function safeMtime(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}
