// Shutdown is bounded: a stop that never finishes is abandoned at the deadline (exit 1, work left),
// and a socket left open does not keep a finished process alive. Real processes.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const fixture = fileURLToPath(new URL('./fixtures/hung-service.ts', import.meta.url));

async function runFixture(mode: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let signalled = false;
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (!signalled && stdout.includes('started')) {
      signalled = true;
      child.kill('SIGTERM');
    }
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // Bounded even if the behaviour is broken: the test fails instead of hanging.
  const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(killer);
  return { code, stdout, stderr };
}

describe('bounded shutdown', () => {
  it('a stop that never finishes: the process exits anyway after the deadline, non-zero', async () => {
    const r = await runFixture('hung-stop');
    expect(r.stderr).toContain('tillwatch fixture: stop did not finish within 0.5 s (SHUTDOWN_TIMEOUT_MS); exiting with work left');
    expect(r.stdout).toContain('run resolved 1; server still listening: true');
    expect(r.code).toBe(1);
  }, 20_000);

  it('a clean stop that leaves a socket open: the process still exits, with 0', async () => {
    const r = await runFixture('linger');
    expect(r.stdout).toContain('run resolved 0; server still listening: true');
    expect(r.code).toBe(0);
  }, 20_000);
});
