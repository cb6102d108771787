// tillwatch backtest --compare on a small file: one pass over both rule sets gives exactly what two
// separate backtests give (a.jsonl, b.jsonl), the per-rule counts of diff.md are the set differences
// of those runs, and diff.md keeps its structure (golden file; UPDATE_GOLDEN=1 rewrites it).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backtestLines, loadRulesConfig, RULE_IDS } from '@tillwatch/rules';
import type { Alert, Transaction } from '@tillwatch/schemas';
import { createFleet } from '@tillwatch/simulator';
import { runCompare } from '../src/lib/compare-command.js';
import { fileSource, parseSince, type Rejected } from '../src/lib/compare-sources.js';

const dir = mkdtempSync(join(tmpdir(), 'tw-compare-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function events(n: number): Transaction[] {
  const fleet = createFleet({ terminals: 40, seed: 3, anomalyRate: 0.05, cards: 300 });
  const out: Transaction[] = [];
  let now = Date.UTC(2026, 0, 5, 9);
  while (out.length < n) {
    now += 400;
    for (const e of fleet.next(now)) out.push(e);
  }
  return out;
}

const A = 'version: 1\nrules:\n  duplicate_charge:\n    enabled: false\n';
const B = 'version: 2\nrules:\n  refund_without_sale:\n    enabled: false\n  abnormal_amount:\n    ratio: 4\n';

describe('backtest --compare', () => {
  it('one pass equals two separate backtests, and diff.md is their per-rule set difference', async () => {
    const lines = events(4000).map((e) => JSON.stringify(e));
    lines.splice(100, 0, '{"not":"a transaction"}', '');
    const eventsPath = join(dir, 'events.jsonl');
    writeFileSync(eventsPath, lines.join('\n') + '\n');
    const out = join(dir, 'out');
    const rejects: Rejected[] = [];
    const cfgA = loadRulesConfig(A, 'yaml');
    const cfgB = loadRulesConfig(B, 'yaml');
    const s = await runCompare({
      source: fileSource(eventsPath, (r) => rejects.push(r)),
      inputLabel: '`events.jsonl`',
      a: { path: 'rules/active.yaml', config: cfgA },
      b: { path: 'rules/candidate.yaml', config: cfgB },
      outDir: out,
      rejected: () => rejects.length,
    });
    expect(s.events).toBe(4000);
    expect(rejects.map((r) => r.line)).toEqual([101]);

    const read = (f: string): Alert[] => readFileSync(join(out, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Alert);
    const sepA = backtestLines(lines, cfgA).alerts;
    const sepB = backtestLines(lines, cfgB).alerts;
    // DIR/a.jsonl and DIR/b.jsonl whatever the rules files are called (diff.md names the files).
    expect(s.files).toEqual({ a: join(out, 'a.jsonl'), b: join(out, 'b.jsonl'), diff: join(out, 'diff.md') });
    expect(read('a.jsonl')).toEqual(sepA);
    expect(read('b.jsonl')).toEqual(sepB);

    const idsA = new Set(sepA.map((a) => a.alert_id));
    const idsB = new Set(sepB.map((a) => a.alert_id));
    let onlyA = 0;
    let onlyB = 0;
    for (const rule of RULE_IDS) {
      const ra = sepA.filter((a) => a.rule === rule);
      const rb = sepB.filter((a) => a.rule === rule);
      const d = s.result.rules.find((x) => x.rule === rule);
      // A rule that raised nothing in either run is not listed (adding a silent rule changes no report).
      expect(d === undefined, rule).toBe(ra.length + rb.length === 0);
      if (d === undefined) continue;
      expect(d.onlyA, rule).toBe(ra.filter((a) => !idsB.has(a.alert_id)).length);
      expect(d.onlyB, rule).toBe(rb.filter((a) => !idsA.has(a.alert_id)).length);
      expect(d.both, rule).toBe(ra.filter((a) => idsB.has(a.alert_id)).length);
      expect(d.examplesOnlyA.length).toBe(Math.min(5, d.onlyA));
      expect(d.examplesOnlyB.length).toBe(Math.min(5, d.onlyB));
      expect(d.examplesBoth.length).toBe(Math.min(5, d.both));
      onlyA += d.onlyA;
      onlyB += d.onlyB;
    }
    // The input exercises every bucket: A alone raises refund_without_sale, B alone duplicate_charge.
    expect(onlyA).toBeGreaterThan(0);
    expect(onlyB).toBeGreaterThan(0);
    expect(s.result.rules.find((x) => x.rule === 'refund_exceeds_sale')!.both).toBeGreaterThan(0);

    // diff.md: golden (the only run-dependent line, the duration, is not in the file).
    const md = readFileSync(join(out, 'diff.md'), 'utf8');
    const golden = join(import.meta.dirname, 'golden', 'compare-diff.md');
    if (process.env.UPDATE_GOLDEN) writeFileSync(golden, md);
    expect(md).toBe(readFileSync(golden, 'utf8'));
    const headings = md.split('\n').filter((l) => l.startsWith('#'));
    expect(headings.slice(0, 2)).toEqual(['# Rule set comparison: a (`rules/active.yaml`) vs b (`rules/candidate.yaml`)', '## Summary']);
    const raised = new Set([...sepA, ...sepB].map((a) => a.rule));
    expect(headings.filter((h) => h.startsWith('## ')).slice(1)).toEqual(RULE_IDS.filter((r) => raised.has(r)).map((r) => `## ${r}`));
    expect(raised.size).toBeLessThan(RULE_IDS.length); // some rules are silent on this input: the listing is tested
    expect(s.result.rules.map((d) => d.rule)).toEqual(RULE_IDS.filter((r) => raised.has(r)));
  });

  it('reads a file as the backtest does: heartbeat lines ("type": "heartbeat") are heartbeats, not rejects', async () => {
    const file = join(import.meta.dirname, '..', '..', '..', 'packages', 'rules', 'test', 'scenarios', 'upload_backlog_draining', 'events.jsonl');
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    expect(lines.every((l) => (JSON.parse(l) as { type?: string }).type === 'heartbeat')).toBe(true);
    const out = join(dir, 'out-hb');
    const rejects: Rejected[] = [];
    const cfg = loadRulesConfig('version: 1\n', 'yaml');
    const s = await runCompare({ source: fileSource(file, (r) => rejects.push(r)), inputLabel: '`hb.jsonl`', a: { path: 'a.yaml', config: cfg }, b: { path: 'b.yaml', config: cfg }, outDir: out, rejected: () => rejects.length });
    expect(rejects).toEqual([]);
    expect(s.events).toBe(lines.length);
    const alerts = readFileSync(join(out, 'a.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Alert);
    expect(alerts.map((a) => a.rule)).toEqual(['upload_backlog']);
    expect(alerts).toEqual(backtestLines(lines, cfg).alerts);
  });

  it('parses --since', () => {
    const now = Date.UTC(2026, 11, 6);
    expect(parseSince('7d', now)).toBe(now - 7 * 86_400_000);
    expect(parseSince('90m', now)).toBe(now - 90 * 60_000);
    expect(parseSince('2026-12-01T00:00:00Z', now)).toBe(Date.UTC(2026, 11, 1));
    expect(() => parseSince('last week', now)).toThrow(/--since/);
  });
});
