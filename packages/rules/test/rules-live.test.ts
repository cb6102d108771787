// Rules as live data: setRules switches the rule set without losing state, every alert carries the
// version in force, and shadow instances / shadow mode never act and never reach `alerts`.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { resolveVariant } from '../src/config.js';
import { alertId, createChangelogView, createRuleEngine, loadRulesConfig, parseRulesConfig, type ChangelogValue } from '../src/index.js';
import { HOUR, MIN, Scenario } from './helpers/builder.js';
import { CONFIGS, denseStream } from './helpers/streams.js';
import { collect, collected, runEvents } from './helpers/run.js';

/** A terminal with `n` ordinary sales of 1000, then one of `amount`. */
function amounts(s: Scenario, n: number, amount: number, terminal = 'T1'): void {
  for (let i = 0; i < n; i++) s.sale({ at: i * MIN, terminal, card: `tok_${i}`, amount: 1000 });
  s.sale({ at: n * MIN, terminal, card: 'tok_big', amount });
}

describe('rules document version', () => {
  it('every alert carries the version of the rule set in force; alert ids do not depend on it', () => {
    const s = new Scenario();
    s.sale({ at: 0, lag: 3 * HOUR });
    const v1 = runEvents(createRuleEngine(parseRulesConfig({ version: 1 })), s.events).alerts;
    const v9 = runEvents(createRuleEngine(parseRulesConfig({ version: 9 })), s.events).alerts;
    expect(v1.map((a) => a.rules_version)).toEqual([1]);
    expect(v9.map((a) => a.rules_version)).toEqual([9]);
    expect(v9.map((a) => a.alert_id)).toEqual(v1.map((a) => a.alert_id));
    expect(v1[0]!.alert_id).toBe(alertId('sync_lag', 2, [s.events[0]!.event_id]));
    expect(createRuleEngine(parseRulesConfig({ version: 4 })).rulesVersion()).toBe(4);
  });
});

describe('setRules', () => {
  it('keeps state across a switch; alerts before carry the old version, after it the new one', () => {
    const e = createRuleEngine(parseRulesConfig({ version: 1 }));
    const s = new Scenario();
    amounts(s, 30, 8000); // 8x: below the v1 ratio of 10
    const first = runEvents(e, s.events.slice(0, 31));
    expect(first.alerts).toEqual([]);
    // A gap opened under v1 (seq 33 missing) ...
    const s2 = new Scenario('b');
    s2.sale({ at: 40 * MIN, seq: 32, txn: 'tx-b1', card: 'tok_b1' });
    s2.sale({ at: 41 * MIN, seq: 34, lag: 3 * HOUR, txn: 'tx-b2', card: 'tok_b2' });
    const before = runEvents(e, s2.events);
    expect(before.alerts.map((a) => [a.rule, a.rules_version])).toEqual([['sync_lag', 1]]);
    // ... the switch lowers the abnormal ratio to 6: the sample of 30 sales is kept, so the very next sale is judged.
    e.setRules(parseRulesConfig({ version: 2, rules: { abnormal_amount: { ratio: 6 } } }));
    expect(e.rulesVersion()).toBe(2);
    const s3 = new Scenario('c');
    s3.sale({ at: 42 * MIN, seq: 35, card: 'tok_z', amount: 7000, txn: 'tx-c1' });
    const after = runEvents(e, s3.events);
    expect(after.alerts.map((a) => [a.rule, a.rules_version, a.details.sales_seen])).toEqual([['abnormal_amount', 2, 33]]);
    // The gap opened under v1 fires under v2, at its v1 due time.
    const timer = collect(collected(), e.advanceClock(s2.events[1]!.received_time + 31 * MIN));
    expect(timer.alerts.map((a) => [a.rule, a.rules_version, a.detected_at])).toEqual([['sequence_gap', 2, s2.events[1]!.received_time + 30 * MIN]]);
  });

  it('a changed sample_size keeps the most recent values; a disabled rule keeps its state and re-enabling it resumes', () => {
    const e = createRuleEngine(parseRulesConfig({}));
    const s = new Scenario();
    for (let i = 0; i < 25; i++) s.sale({ at: i * MIN, card: `tok_${i}`, amount: i < 20 ? 100 : 1000 });
    runEvents(e, s.events);
    // The last 5 sales were 1000: with a sample of 5, the median is 1000 and 5000 is only 5x.
    e.setRules(parseRulesConfig({ version: 2, rules: { abnormal_amount: { sample_size: 5, min_sales: 3 } } }));
    const t1 = new Scenario('x').sale({ at: 30 * MIN, card: 'tok_a', amount: 5000, txn: 'tx-x1', seq: 26 });
    expect(e.onTransaction(t1).alerts).toEqual([]);
    e.setRules(parseRulesConfig({ version: 3, rules: { abnormal_amount: { enabled: false } } }));
    const t2 = new Scenario('y').sale({ at: 31 * MIN, card: 'tok_b', amount: 90_000, txn: 'tx-y1', seq: 27 });
    expect(e.onTransaction(t2).alerts).toEqual([]);
    e.setRules(parseRulesConfig({ version: 4, rules: { abnormal_amount: { sample_size: 5, min_sales: 3 } } }));
    const t3 = new Scenario('z').sale({ at: 32 * MIN, card: 'tok_c', amount: 90_000, txn: 'tx-z1', seq: 28 });
    // The disabled rule kept adding to its sample: [1000, 1000, 1000, 5000, 90000] -> median 1000.
    expect(e.onTransaction(t3).alerts.map((a) => [a.rules_version, a.details.median_minor, a.details.sample_size])).toEqual([[4, 1000, 5]]);
  });

  it('switching to the same rules changes nothing but the version (property over streams and switch points)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), fc.integer({ min: 0, max: CONFIGS.length - 1 }), fc.uniqueArray(fc.integer({ min: 0, max: 799 }), { maxLength: 3 }), (seed, c, at) => {
        const cfg = CONFIGS[c]!;
        const events = denseStream(seed, 800, 20_000);
        const plain = runEvents(createRuleEngine(cfg), events);
        const e = createRuleEngine(cfg);
        const out = collected();
        const switches = new Set(at);
        let version = cfg.version;
        const versions: number[] = [];
        events.forEach((t, i) => {
          if (switches.has(i)) e.setRules({ ...cfg, version: ++version });
          const o = e.onTransaction(t);
          for (const a of o.alerts) versions.push(a.rules_version === version ? 1 : 0);
          collect(out, o);
        });
        const strip = (xs: { rules_version?: number }[]) => xs.map(({ rules_version: _, ...x }) => x);
        expect(strip(out.alerts)).toEqual(strip(plain.alerts));
        expect(out.actions).toEqual(plain.actions);
        expect(versions.every((v) => v === 1)).toBe(true);
      }),
      { numRuns: 15 },
    );
  }, 60_000);
});

describe('shadow', () => {
  it('a shadow instance runs beside the active rule: its alerts only in shadowAlerts, no actions from it', () => {
    const cfg = parseRulesConfig({
      version: 3,
      rules: { abnormal_amount: { ratio: 10 } },
      policy: { abnormal_amount: ['FREEZE_CARD'] },
      shadow: { abnormal_amount: { ratio: 6 } },
    });
    const e = createRuleEngine(cfg);
    const s = new Scenario();
    amounts(s, 25, 7000); // 7x: the shadow (6) fires, the active (10) does not
    s.sale({ at: 30 * MIN, card: 'tok_huge', amount: 20_000 }); // 20x: both fire
    const out = runEvents(e, s.events);
    expect(out.alerts.map((a) => [a.rule, a.details.amount_minor])).toEqual([['abnormal_amount', 20_000]]);
    expect(out.actions.map((a) => [a.kind, a.alert_id])).toEqual([['FREEZE_CARD', out.alerts[0]!.alert_id]]);
    expect(out.shadowAlerts.map((a) => [a.rule, a.details.amount_minor, a.details.threshold_ratio, a.rules_version])).toEqual([
      ['abnormal_amount', 7000, 6, 3],
      ['abnormal_amount', 20_000, 6, 3],
    ]);
    // Same contract: the shadow alert of the sale both flag has the active alert's id.
    expect(out.shadowAlerts[1]!.alert_id).toBe(out.alerts[0]!.alert_id);
  });

  it('mode: shadow on a rule or a merchant override: evaluated, reported apart, never acted on', () => {
    const cfg = parseRulesConfig({ rules: { sync_lag: { mode: 'shadow' } }, overrides: { merchants: { M2: { refund_without_sale: { mode: 'shadow' } } } } });
    const e = createRuleEngine(cfg);
    const s = new Scenario();
    s.sale({ at: 0, lag: HOUR });
    s.refund({ at: MIN, of: 'nope', merchant: 'M1', terminal: 'T1' });
    s.refund({ at: MIN, of: 'nope', merchant: 'M2', terminal: 'T5' });
    const out = runEvents(e, s.events);
    expect(out.alerts.map((a) => [a.rule, a.merchant_id])).toEqual([['refund_without_sale', 'M1']]);
    expect(out.shadowAlerts.map((a) => [a.rule, a.merchant_id])).toEqual([
      ['sync_lag', 'M1'],
      ['refund_without_sale', 'M2'],
    ]);
    expect(out.actions.every((a) => a.alert_id === out.alerts[0]!.alert_id)).toBe(true);
  });

  it('never emits actions and never puts a shadow alert in alerts (property: every rule shadowed, dense streams)', () => {
    const shadowAll = (base: object) => ({
      ...base,
      shadow: { duplicate_charge: { window: '5m' }, abnormal_amount: { ratio: 4 }, sync_lag: { threshold: '5m' }, sequence_gap: { timeout: '10m' }, refund_without_sale: {}, refund_exceeds_sale: {}, refund_card_mismatch: {}, refund_after_deadline: { deadline: '10m' }, refund_velocity: { count: 2 } },
    });
    const bases = [
      {},
      {
        engine: { allowed_lateness: '30m', refund_lookback: '2h', terminal_idle_ttl: '3h' },
        rules: { sequence_gap: { timeout: '5m' }, abnormal_amount: { min_sales: 3, sample_size: 7, ratio: 3 }, refund_after_deadline: { deadline: '20m' }, refund_velocity: { count: 3, window: '30m' } },
      },
    ];
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), fc.integer({ min: 0, max: 1 }), (seed, b) => {
        const events = denseStream(seed, 800, 20_000);
        const plain = runEvents(createRuleEngine(parseRulesConfig(bases[b])), events);
        const shadowed = runEvents(createRuleEngine(parseRulesConfig(shadowAll(bases[b]!))), events);
        // The active output is exactly what it is without shadows.
        expect(shadowed.alerts).toEqual(plain.alerts);
        expect(shadowed.actions).toEqual(plain.actions);
        const activeIds = new Set(plain.alerts.map((a) => a.alert_id));
        const actedOn = new Set(shadowed.actions.map((a) => a.alert_id));
        for (const a of shadowed.shadowAlerts) if (!activeIds.has(a.alert_id)) expect(actedOn.has(a.alert_id)).toBe(false);
        expect(shadowed.shadowAlerts.length).toBeGreaterThan(0);
      }),
      { numRuns: 10 },
    );
  }, 60_000);

  it('shadow state goes through the entity changelog: a restored engine continues the shadow instance exactly', () => {
    const cfg = parseRulesConfig({
      shadow: { abnormal_amount: { ratio: 4, sample_size: 7, min_sales: 3 }, sequence_gap: { timeout: '10m' }, sync_lag: { threshold: '2m' }, refund_after_deadline: { deadline: '30m' }, refund_velocity: { count: 2, window: '20m' } },
    });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), fc.integer({ min: 1, max: 599 }), (seed, cut) => {
        const events = denseStream(seed, 600, 20_000);
        const expected = runEvents(createRuleEngine(cfg), events);
        const a = createRuleEngine(cfg);
        const view = createChangelogView(a);
        const out = runEvents(a, events.slice(0, cut));
        const topic = new Map<string, ChangelogValue>();
        for (const [k, v] of JSON.parse(JSON.stringify(view.takeChanges())) as [string, ChangelogValue | null][]) {
          if (v === null) topic.delete(k);
          else topic.set(k, v);
        }
        const b = createRuleEngine(cfg);
        b.setClock(a.clock());
        createChangelogView(b).restore(topic);
        runEvents(b, events.slice(cut), out);
        expect(out).toEqual(expected);
      }),
      { numRuns: 15 },
    );
  }, 60_000);

  it('adding and removing a shadow instance with setRules leaves the active output alone', () => {
    const events = denseStream(7, 1000, 20_000);
    const p = createRuleEngine(parseRulesConfig({}));
    const plain = runEvents(p, events);
    const e = createRuleEngine(parseRulesConfig({}));
    const out = collected();
    events.forEach((t, i) => {
      if (i === 300) e.setRules(parseRulesConfig({ shadow: { duplicate_charge: { window: '1m' }, sequence_gap: { timeout: '5m' }, abnormal_amount: { ratio: 3 } } }));
      if (i === 700) e.setRules(parseRulesConfig({}));
      collect(out, e.onTransaction(t));
    });
    expect(out.alerts).toEqual(plain.alerts);
    expect(out.actions).toEqual(plain.actions);
    expect(out.shadowAlerts.length).toBeGreaterThan(0);
    // The removed shadow instances' state (gaps and their timers, samples) is gone.
    expect(e.stats()).toEqual(p.stats());
  });
});

describe('shadow config', () => {
  it('validates the shadow section like the rules section, without mode', () => {
    expect(() => parseRulesConfig({ shadow: { abnormal_amount: { ratio: 2 } } })).toThrow('shadow.abnormal_amount.ratio: expected a number >= 3, got 2');
    expect(() => parseRulesConfig({ shadow: { abnormal_amount: { mode: 'active' } } })).toThrow(/^shadow\.abnormal_amount\.mode: unknown key/);
    expect(() => parseRulesConfig({ shadow: { no_such_rule: {} } })).toThrow(/^shadow\.no_such_rule: unknown key/);
    expect(() => parseRulesConfig({ rules: { sync_lag: { mode: 'dry-run' } } })).toThrow('rules.sync_lag.mode: expected one of active, shadow, got "dry-run"');
    expect(() => parseRulesConfig({ shadow: { sequence_gap: { timeout: '40d' } } })).toThrow(/^engine\.terminal_idle_ttl: must be longer than the longest sequence_gap timeout/);
    const c = parseRulesConfig({ shadow: { abnormal_amount: { ratio: 6 } } });
    expect(c.shadow).toEqual({ abnormal_amount: { ratio: 6 } });
    expect(parseRulesConfig(JSON.parse(JSON.stringify(c)))).toEqual(c);
  });

  it('the shipped example documents a shadow instance; overrides still apply on top of it', () => {
    const c = loadRulesConfig(readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'rules.example.yaml'), 'utf8'), 'yaml');
    expect(c.shadow).toEqual({ abnormal_amount: { ratio: 6 } });
    expect(resolveVariant(c, 1, 'M0001', 'T1').abnormal_amount).toMatchObject({ ratio: 6, mode: 'shadow' });
    expect(resolveVariant(c, 1, 'M0042', 'T1').abnormal_amount).toMatchObject({ ratio: 25, mode: 'shadow' });
    expect(resolveVariant(c, 0, 'M0001', 'T1').abnormal_amount).toMatchObject({ ratio: 10, mode: 'active' });
  });
});
