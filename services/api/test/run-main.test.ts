// `tillwatch api` as a process (runApiMain): the stop is bounded by SHUTDOWN_TIMEOUT_MS like the
// other services (createServiceLifecycle): a close that never finishes is abandoned with exit 1
// and one line; a start-up error is one `tillwatch api: fatal: ...` line and exit 1, with the ops
// port's /healthz turned unhealthy from that moment.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { runApiMain, type RunningApi, type StartApiOptions } from '../src/main.js';

const env = { SHUTDOWN_TIMEOUT_MS: '300', LOG_LEVEL: 'silent' };
const signals = () => new EventEmitter() as unknown as Pick<NodeJS.Process, 'once' | 'off'> & EventEmitter;

function fakeApi(close: () => Promise<void>): RunningApi {
  return { url: 'http://127.0.0.1:1', opsUrl: 'http://127.0.0.1:2', app: {} as RunningApi['app'], close };
}

describe('runApiMain', () => {
  it('a close that never finishes: exit 1 once SHUTDOWN_TIMEOUT_MS has passed, with one line', async () => {
    const sig = signals();
    const lines: string[] = [];
    let started!: () => void;
    const up = new Promise<void>((r) => (started = r));
    const run = runApiMain(env, {
      signals: sig,
      print: (l) => lines.push(l),
      start: async () => {
        started();
        return fakeApi(() => new Promise<void>(() => undefined));
      },
    });
    await up;
    await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    sig.emit('SIGTERM', 'SIGTERM');
    expect(await run).toBe(1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(lines).toEqual(['tillwatch api: stop did not finish within 0.3 s (SHUTDOWN_TIMEOUT_MS); exiting with work left']);
  });

  it('a close that finishes: exit 0', async () => {
    const sig = signals();
    let closed = false;
    let started!: () => void;
    const up = new Promise<void>((r) => (started = r));
    const run = runApiMain(env, {
      signals: sig,
      print: () => undefined,
      start: async () => {
        started();
        return fakeApi(async () => void (closed = true));
      },
    });
    await up;
    await new Promise((r) => setTimeout(r, 20));
    sig.emit('SIGTERM', 'SIGTERM');
    expect(await run).toBe(0);
    expect(closed).toBe(true);
  });

  it('a start-up error: one fatal line, exit 1, and the health given to the ops server turns false', async () => {
    const lines: string[] = [];
    let healthy: (() => boolean) | undefined;
    const code = await runApiMain(env, {
      signals: signals(),
      print: (l) => lines.push(l),
      start: async (o: StartApiOptions) => {
        healthy = o.healthy;
        expect(healthy?.()).toBe(true);
        throw new Error('ClickHouse is unreachable at http://127.0.0.1:1 (connect ECONNREFUSED 127.0.0.1:1); unset CLICKHOUSE_URL');
      },
    });
    expect(code).toBe(1);
    expect(lines).toEqual(['tillwatch api: fatal: ClickHouse is unreachable at http://127.0.0.1:1 (connect ECONNREFUSED 127.0.0.1:1); unset CLICKHOUSE_URL']);
    expect(healthy?.()).toBe(false);
  });
});
