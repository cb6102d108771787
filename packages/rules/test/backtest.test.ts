// End to end: runBacktest on real files, with malformed and invalid lines among good ones.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatSummary, runBacktest } from '../scripts/backtest.js';
import { redactPans } from '../src/index.js';
import { HOUR, MIN, Scenario } from './helpers/builder.js';

const dir = mkdtempSync(join(tmpdir(), 'tillwatch-backtest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const readJsonl = (f: string): Record<string, unknown>[] =>
  readFileSync(f, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('runBacktest', () => {
  it('writes alerts, actions and rejects, and counts everything', async () => {
    const s = new Scenario();
    const a = s.sale({ at: 0, terminal: 'T1', card: 'tok_a', amount: 4200 });
    s.sale({ at: 2 * MIN, terminal: 'T2', card: 'tok_a', amount: 4200 });
    s.sale({ at: 3 * MIN, lag: 2 * HOUR, terminal: 'T3', card: 'tok_b' });
    s.sale({ at: 4 * MIN, lag: 3 * HOUR, merchant: 'Café Ünïcode', terminal: 'T-é', card: 'tok_c' }); // not ASCII: the JSON.parse path
    const good = s.lines();
    const pan = JSON.stringify({ ...s.events[0], event_id: 'x', card_token: '4111111111111111' });
    const lines = [
      good[0],
      '{"event_id": "broken", ',
      '',
      good[1],
      JSON.stringify({ ...a, amount_minor: -5 }),
      '   ',
      pan,
      '[1,2,3]',
      good[2] + '\r',
      ` ${good[3]}`,
    ];
    const events = join(dir, 'events.jsonl');
    writeFileSync(events, lines.join('\n')); // no trailing newline: the last line still counts
    const out = join(dir, 'alerts.jsonl');
    const actions = join(dir, 'actions.jsonl');
    const logs: string[] = [];
    const summary = await runBacktest({ eventsPath: events, outPath: out, actionsPath: actions, progress: true, log: (l) => logs.push(l) });

    expect(summary).toMatchObject({ linesRead: 8, blankLines: 2, eventsProcessed: 4, rejected: 4, alerts: 3, actions: 4, rejectsPath: `${out}.rejects.jsonl` });
    expect(summary.alertsByRule).toMatchObject({ duplicate_charge: 1, sync_lag: 2, abnormal_amount: 0 });
    expect(summary.actionsByKind).toEqual({ REVIEW_REFUND: 1, NOTIFY_MERCHANT: 3 });
    expect(logs[0]).toMatch(/^backtest: .*events\.jsonl .* with the default rules -> .*alerts\.jsonl$/);

    expect(readJsonl(out).map((x) => x.rule)).toEqual(['duplicate_charge', 'sync_lag', 'sync_lag']);
    expect(readJsonl(out)[2]).toMatchObject({ merchant_id: 'Café Ünïcode', terminal_id: 'T-é' });
    expect(readJsonl(actions)).toHaveLength(4);

    const rejects = readJsonl(summary.rejectsPath);
    expect(rejects.map((r) => r.line)).toEqual([2, 5, 7, 8]);
    expect(rejects[0]!.reason).toMatch(/^invalid JSON: /);
    expect(rejects[0]!.raw).toBe('{"event_id": "broken",');
    expect(rejects[1]!.reason).toBe('invalid transaction: amount_minor: expected a non-negative integer, got -5');
    expect(rejects[2]!.reason).toBe('invalid transaction: card_token: looks like a raw card number (PAN); only tokens are accepted');
    // The PAN itself is never written anywhere.
    expect(readFileSync(summary.rejectsPath, 'utf8')).not.toContain('4111111111111111');
    expect(rejects[2]!.raw).toContain('"card_token":"[PAN REDACTED]"');
    expect(rejects[3]!.reason).toBe('invalid transaction: (record): expected an object');

    const text = formatSummary(summary);
    expect(text).toMatch(/lines read\s+8 \(\+2 blank, skipped\)/);
    expect(text).toMatch(/rejected\s+4 {2}-> .*rejects\.jsonl/);
    expect(text).toMatch(/duplicate_charge\s+1/);
    expect(text).toMatch(/events\/s/);
  });

  it('reads lines longer than its buffer and many chunks, with a rules file', async () => {
    const s = new Scenario();
    for (let i = 0; i < 30_000; i++) s.sale({ at: i * 1000, terminal: `T${i % 50}`, card: `tok_${i}`, amount: 1000 + (i % 7) });
    const long = JSON.stringify({ ...s.events[0], event_id: 'long', padding: 'x'.repeat(9 << 20) });
    const events = join(dir, 'many.jsonl');
    writeFileSync(events, [long, ...s.lines()].join('\n') + '\n');
    const cfg = join(dir, 'rules.json');
    writeFileSync(cfg, JSON.stringify({ rules: { abnormal_amount: { enabled: false } } }));
    const out = join(dir, 'many-alerts.jsonl');
    const summary = await runBacktest({ eventsPath: events, outPath: out, configPath: cfg, log: () => {} });
    expect(summary).toMatchObject({ linesRead: 30_001, eventsProcessed: 30_001, rejected: 0, alerts: 0, configPath: cfg });
    expect(readFileSync(out, 'utf8')).toBe('');
    expect(readFileSync(summary.rejectsPath, 'utf8')).toBe('');
  });

  it('reads heartbeats from the same file ("type": "heartbeat"), rejects bad ones like bad transactions, and gives what the engine gives', async () => {
    const s = new Scenario();
    s.sale({ at: 0 });
    for (let i = 1; i <= 5; i++) s.heartbeat({ at: i * MIN });
    s.sale({ at: 30 * MIN, terminal: 'T2' }); // clock to 30 min: T1 silent since 5 min
    const good = s.lines();
    const bad = [
      JSON.stringify({ type: 'heartbeat', terminal_id: 'T1', merchant_id: 'M1', last_seq: -1, queue_depth: 2.5, event_time: 0, received_time: s.events[1]!.received_time }),
      ' {"type":"heartbeat"}', // whitespace: the JSON.parse path
    ];
    const events = join(dir, 'heartbeats.jsonl');
    writeFileSync(events, [...good.slice(0, 3), ...bad, ...good.slice(3)].join('\n') + '\n');
    const out = join(dir, 'hb-alerts.jsonl');
    const updates = join(dir, 'hb-updates.jsonl');
    const summary = await runBacktest({ eventsPath: events, outPath: out, updatesPath: updates, log: () => {} });
    expect(summary).toMatchObject({ linesRead: 9, eventsProcessed: 7, heartbeats: 5, rejected: 2, alerts: 1 });
    expect(readJsonl(out).map((a) => [a.rule, a.event_ids])).toEqual([['terminal_offline', [(s.events[5] as { event_id: string }).event_id]]]);
    const rejects = readJsonl(summary.rejectsPath);
    expect(rejects.map((r) => r.line)).toEqual([4, 5]);
    expect(rejects[0]!.reason).toMatch(/^invalid heartbeat: last_seq: expected a non-negative integer, got -1; queue_depth: .*; event_time: /);
    expect(rejects[1]!.reason).toMatch(/^invalid heartbeat: terminal_id: /);
    expect(formatSummary(summary)).toMatch(/events processed\s+7 \(5 heartbeats\)/);
  });

  it('fails fast on a bad rules file, naming the file and the key', async () => {
    const events = join(dir, 'one.jsonl');
    writeFileSync(events, new Scenario().lines().join('\n'));
    const cfg = join(dir, 'bad.yaml');
    writeFileSync(cfg, 'rules:\n  sync_lag:\n    threshold: soon\n');
    await expect(runBacktest({ eventsPath: events, outPath: join(dir, 'x.jsonl'), configPath: cfg, log: () => {} })).rejects.toThrow(
      /^invalid rules config .*bad\.yaml: rules\.sync_lag\.threshold: expected a duration/,
    );
  });
});

describe('redactPans', () => {
  it('masks card-number-like values but keeps epoch-ms timestamps and ids', () => {
    expect(redactPans('{"card_token":"4111 1111 1111 1111","t":1736154000000,"id":"tok_123"}')).toBe('{"card_token":"[PAN REDACTED]","t":1736154000000,"id":"tok_123"}');
    expect(redactPans('{"card_token":5500000000000004}')).toBe('{"card_token":[PAN REDACTED]}');
    expect(redactPans('{"n":"12345678"}')).toBe('{"n":"12345678"}');
  });
});
