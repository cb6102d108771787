// /healthz reports unhealthy from the moment the process decided to die, while its stop still runs.
import { describe, expect, it, vi } from 'vitest';
import { FATAL_STOP_TIMEOUT_MS, createServiceLifecycle } from '@tillwatch/stream';
import { createLogger, createOpsServer, createRegistry } from '@tillwatch/telemetry';

const logger = createLogger({ service: 'test', level: 'silent' });
const signals = { once: () => process, off: () => process } as unknown as Pick<NodeJS.Process, 'once' | 'off'>;

describe('service lifecycle', () => {
  it('a fatal error at run time: one line, /healthz 503 at once, exit code 1 after the stop', async () => {
    const printed: string[] = [];
    const life = createServiceLifecycle({ service: 'svc', logger, shutdownTimeoutMs: 5_000, print: (l) => printed.push(l), signals });
    const ops = createOpsServer({ registry: createRegistry({ service: 'svc', defaultMetrics: false }), healthy: life.healthy, ready: () => true, host: '127.0.0.1', port: 0 });
    const { url } = await ops.listen();
    let releaseStop!: () => void;
    const stopped = new Promise<void>((r) => (releaseStop = r));
    const done = life.run({ start: async () => undefined, stop: () => stopped, close: () => ops.close() });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    life.fail(new Error('ClickHouse refused the statement'));
    // The stop is still running: the liveness probe already sees a dying process.
    expect((await fetch(`${url}/healthz`)).status).toBe(503);
    expect(printed).toEqual(['tillwatch svc: fatal: ClickHouse refused the statement']);
    releaseStop();
    expect(await done).toBe(1);
  });

  it('a failed start is fatal: exit 1, not a process left running unready', async () => {
    const printed: string[] = [];
    const life = createServiceLifecycle({ service: 'svc', logger, shutdownTimeoutMs: 5_000, print: (l) => printed.push(l), signals });
    let stops = 0;
    const code = await life.run({ start: () => Promise.reject(new Error('schema registry is unreachable at http://x')), stop: async () => void stops++ });
    expect(code).toBe(1);
    expect(stops).toBe(1);
    expect(life.healthy()).toBe(false);
    expect(printed).toEqual(['tillwatch svc: fatal: schema registry is unreachable at http://x']);
  });
});

describe('service lifecycle deadlines', () => {
  it('after a fatal error a stop that hangs is abandoned within FATAL_STOP_TIMEOUT_MS even when SHUTDOWN_TIMEOUT_MS is longer', async () => {
    vi.useFakeTimers();
    try {
      const printed: string[] = [];
      const life = createServiceLifecycle({ service: 'svc', logger, shutdownTimeoutMs: 60_000, print: (l) => printed.push(l), signals });
      let code: number | undefined;
      void life.run({ start: async () => undefined, stop: () => new Promise<void>(() => undefined) }).then((c) => (code = c));
      await vi.advanceTimersByTimeAsync(0);
      life.fail(new Error('boom'));
      await vi.advanceTimersByTimeAsync(FATAL_STOP_TIMEOUT_MS - 1);
      expect(code).toBeUndefined();
      await vi.advanceTimersByTimeAsync(1);
      expect(code).toBe(1);
      expect(printed).toEqual(['tillwatch svc: fatal: boom', `tillwatch svc: stop did not finish within ${FATAL_STOP_TIMEOUT_MS / 1000} s; exiting with work left`]);
      expect(FATAL_STOP_TIMEOUT_MS).toBeLessThan(10_000);
    } finally {
      vi.useRealTimers();
    }
  });
});
