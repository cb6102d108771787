// A CLI that behaves: --help/-h on every command prints its usage with every option described and
// exits 0 without starting anything; --version; an unknown option prints the usage and exits 2;
// backtest --max-rejects and --json.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { commands, main } from '../src/main.js';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t) } };
}

describe('tillwatch usage', () => {
  it.each(Object.keys(commands))('%s --help and -h print every option with a description and exit 0', async (name) => {
    const spec = (await commands[name]!.load() as unknown as { spec: { options: Record<string, { description: string }> } }).spec;
    for (const flag of ['--help', '-h']) {
      const c = io();
      // A command that started its service here would never return: the test would time out.
      expect(await main([name, flag], c.io)).toBe(0);
      const text = c.out.join('\n');
      expect(text).toMatch(new RegExp(`^usage: tillwatch ${name}\\b`));
      for (const [option, o] of Object.entries(spec.options)) {
        expect(o.description.length).toBeGreaterThan(10);
        expect(text).toMatch(new RegExp(`--${option}\\b.*${o.description.slice(0, 20).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      }
      expect(text).toContain('-h, --help');
    }
  }, 60_000);

  it.each(Object.keys(commands))('%s with an unknown option prints the usage and exits 2', async (name) => {
    const c = io();
    expect(await main([name, '--no-such-option'], c.io)).toBe(2);
    expect(c.err.join('\n')).toMatch(/Unknown option '--no-such-option'/);
    expect(c.err.join('\n')).toMatch(new RegExp(`usage: tillwatch ${name}\\b`));
  });

  it('--version prints the version; a missing required option is a usage error', async () => {
    const c = io();
    expect(await main(['--version'], c.io)).toBe(0);
    expect(c.out[0]).toMatch(/^tillwatch \d+\.\d+\.\d+$/);
    const d = io();
    expect(await main(['produce'], d.io)).toBe(2);
    expect(d.err.join('\n')).toContain('--events is required');
    const e = io();
    expect(await main(['simulate', '--rate', 'fast'], e.io)).toBe(2);
    expect(e.err.join('\n')).toContain('--rate: expected a number >= 1, got "fast"');
  });

  it('as a real process: `api --help` and `start --help` exit 0 at once; `tillwatch --version`', () => {
    const bin = fileURLToPath(new URL('../bin/tillwatch.js', import.meta.url));
    for (const args of [['api', '--help'], ['start', '--help'], ['--version']]) {
      const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/^(usage: tillwatch|tillwatch \d)/);
    }
  }, 60_000);
});

describe('tillwatch stack status --json', () => {
  it('prints one JSON object for scripts: healthy, every component, ClickHouse', async () => {
    const lines: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((t: unknown) => void lines.push(String(t)));
    let code: number;
    try {
      code = await main(['stack', 'status', '--json'], io().io);
    } finally {
      spy.mockRestore();
    }
    expect(lines).toHaveLength(1);
    const s = JSON.parse(lines[0]!) as { healthy: boolean; components: { name: string; state: string }[]; clickhouse: { kind: string; state: string } };
    expect(code).toBe(s.healthy ? 0 : 3);
    expect(s.components.map((c) => c.name)).toEqual(expect.arrayContaining(['kafka', 'registry']));
    for (const c of s.components) expect(['running', 'stopped', 'unhealthy']).toContain(c.state);
    expect(s.clickhouse).toMatchObject({ kind: expect.stringMatching(/^(embedded|server)$/), state: expect.any(String) });
    expect(await main(['stack', 'up', '--json'], io().io)).toBe(2);
  }, 60_000);
});

describe('tillwatch backtest', () => {
  const received = Date.UTC(2026, 5, 1, 12);
  const line = (patch: object) =>
    JSON.stringify({ event_id: `e${Math.random()}`, txn_id: 't', kind: 'SALE', status: 'APPROVED', terminal_id: 'T1', merchant_id: 'M1', card_token: 'tok', amount_minor: 100, currency: 'EUR', terminal_seq: 1, original_txn_id: null, event_time: received, received_time: received, ...patch });
  const dir = mkdtempSync(join(tmpdir(), 'tw-backtest-'));
  const events = join(dir, 'events.jsonl');
  writeFileSync(events, [line({}), line({ event_time: Date.UTC(2100, 0, 1) }), line({ amount_minor: -1, currency: 'eur' }), line({ terminal_seq: 2 })].join('\n') + '\n');

  // The command prints its summary with console.log (stdout).
  const stdout = (): { lines: string[]; restore: () => void } => {
    const lines: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((t: unknown) => void lines.push(String(t)));
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    return { lines, restore: () => { spy.mockRestore(); vi.restoreAllMocks(); } };
  };

  it('rejects like the detector (ClockSkew, every failing field); --max-rejects N exits 1 above N; --json prints the summary', async () => {
    const c = stdout();
    const out = join(dir, 'alerts.jsonl');
    expect(await main(['backtest', '--events', events, '--out', out, '--max-rejects', '1', '--json'], io().io)).toBe(1);
    c.restore();
    const summary = JSON.parse(c.lines.join('\n')) as { rejected: number; eventsProcessed: number; ok: boolean; maxRejects: number; rejectsPath: string };
    expect(summary).toMatchObject({ rejected: 2, eventsProcessed: 2, ok: false, maxRejects: 1 });
    const rejects = readFileSync(summary.rejectsPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { line: number; reason: string });
    expect(rejects[0]).toMatchObject({ line: 2 });
    expect(rejects[0]!.reason).toMatch(/^ClockSkew: event_time: 2100-01-01/);
    expect(rejects[1]!.reason).toMatch(/^invalid transaction: amount_minor: .*; currency: /);

    const ok = stdout();
    expect(await main(['backtest', '--events', events, '--out', out, '--max-rejects', '2', '--json'], io().io)).toBe(0);
    ok.restore();
    expect(JSON.parse(ok.lines.join('\n'))).toMatchObject({ rejected: 2, ok: true });
    const quiet = stdout();
    // Default: unlimited, as before.
    expect(await main(['backtest', '--events', events, '--out', out], io().io)).toBe(0);
    expect(await main(['backtest', '--events', events, '--out', out, '--max-rejects', '-1'], io().io)).toBe(2);
    quiet.restore();
  });
});
