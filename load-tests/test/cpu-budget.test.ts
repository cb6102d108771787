import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpus } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { findPidByArg, startCpuBudget } from '../src/cpu-budget.js';

const linux = process.platform === 'linux';
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

/** A child process spinning on the CPU until killed, with `marker` among its arguments. */
function spinner(marker: string): ChildProcess {
  const c = spawn(process.execPath, ['-e', 'for (;;) {}', marker], { stdio: 'ignore' });
  children.push(c);
  return c;
}

function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy
  }
}

describe.runIf(linux)('cpu budget', () => {
  it("charges this process's own CPU per event, and sees the machine busy at least that much", () => {
    const end = startCpuBudget(null);
    spin(200);
    const b = end(1000);
    // 200 ms of CPU over 1,000 events: about 200 µs each (the machine's figure counts in 10 ms ticks).
    expect(b.processMicrosPerEvent).toBeGreaterThan(150);
    expect(b.machineMicrosPerEvent).toBeGreaterThan(100);
    expect(b.machineBusy).toBeGreaterThan(0);
    expect(b.machineBusy).toBeLessThanOrEqual(1);
    expect(b.brokerMicrosPerEvent).toBeNull();
    expect(b.cpuBoundEventsPerSec).toBe(Math.round((cpus().length * 1e6) / b.machineMicrosPerEvent!));
  });

  it("finds a process by an argument and charges that process's CPU as the broker's", async () => {
    const marker = `cpu-budget-${randomUUID()}`;
    const child = spinner(marker);
    await new Promise((r) => setTimeout(r, 100));
    expect(findPidByArg(marker)).toBe(child.pid);
    const end = startCpuBudget(child.pid!);
    await new Promise((r) => setTimeout(r, 400));
    const b = end(1);
    // The child spins the whole time: at least one 10 ms tick of its CPU in 400 ms, even on a busy machine.
    expect(b.brokerMicrosPerEvent).toBeGreaterThanOrEqual(10_000);
  });

  it('gives null for a process that is not there', () => {
    expect(findPidByArg(`absent-${randomUUID()}`)).toBeNull();
    const end = startCpuBudget(2 ** 30);
    expect(end(1).brokerMicrosPerEvent).toBeNull();
  });
});
