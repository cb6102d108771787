import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RulesConfigError, defaultRulesConfig, loadRulesConfig, parseRulesConfig, resolveRules } from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));

const problemsOf = (raw: unknown): string[] => {
  try {
    parseRulesConfig(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(RulesConfigError);
    return (e as RulesConfigError).issues.map((i) => `${i.path}: ${i.problem}`);
  }
  return [];
};

describe('rules config', () => {
  it('an empty file means every default', () => {
    expect(parseRulesConfig(undefined)).toEqual(defaultRulesConfig());
    expect(parseRulesConfig(null)).toEqual(defaultRulesConfig());
    expect(loadRulesConfig('', 'yaml')).toEqual(defaultRulesConfig());
    expect(loadRulesConfig('{}', 'json')).toEqual(defaultRulesConfig());
  });

  it('has the DESIGN.md defaults', () => {
    const c = defaultRulesConfig();
    expect(c.rules.duplicate_charge.window).toBe(10 * 60_000);
    expect(c.rules.abnormal_amount).toMatchObject({ ratio: 10, min_sales: 20, sample_size: 101 });
    expect(c.rules.sync_lag.threshold).toBe(15 * 60_000);
    expect(c.rules.sequence_gap.timeout).toBe(30 * 60_000);
    expect(c.engine).toEqual({ allowed_lateness: 24 * 3600_000, refund_lookback: 8 * 24 * 3600_000, terminal_idle_ttl: 30 * 24 * 3600_000, max_clock_skew: 3600_000 });
    expect(c.policy.duplicate_charge.map((a) => a.kind)).toEqual(['REVIEW_REFUND', 'NOTIFY_MERCHANT']);
    expect(c.policy.refund_exceeds_sale).toEqual([
      { kind: 'FREEZE_TERMINAL', expires_after: 24 * 3600_000 },
      { kind: 'NOTIFY_ACQUIRER', expires_after: null },
    ]);
    expect(c.rules.refund_card_mismatch.severity).toBe('high');
    expect(c.policy.refund_card_mismatch).toEqual([{ kind: 'REVIEW_REFUND', expires_after: null }]);
    expect(c.rules.refund_after_deadline.deadline).toBe(7 * 24 * 3600_000);
    expect(c.rules.refund_velocity).toMatchObject({ count: 5, window: 60 * 60_000 });
  });

  it('loads the shipped example, whose values are the defaults plus example overrides', () => {
    const c = loadRulesConfig(readFileSync(join(here, '..', 'rules.example.yaml'), 'utf8'), 'yaml');
    const d = defaultRulesConfig();
    expect(c.rules).toEqual(d.rules);
    expect(c.engine).toEqual(d.engine);
    expect(c.policy).toEqual(d.policy);
    expect(c.overrides.merchants.M0042).toEqual({ abnormal_amount: { ratio: 25 } });
    expect(c.overrides.terminals.T00077).toEqual({ sequence_gap: { enabled: false } });
  });

  it('reads durations as ms or unit strings, in YAML and JSON', () => {
    const y = loadRulesConfig('rules:\n  duplicate_charge: { window: 90s }\n  sync_lag: { threshold: 1.5h }\nengine: { refund_lookback: 8d }', 'yaml');
    expect(y.rules.duplicate_charge.window).toBe(90_000);
    expect(y.rules.sync_lag.threshold).toBe(5_400_000);
    expect(y.engine.refund_lookback).toBe(8 * 86_400_000);
    const j = loadRulesConfig('{"rules":{"sequence_gap":{"timeout":120000}}}', 'json');
    expect(j.rules.sequence_gap.timeout).toBe(120_000);
  });

  it('the stage section: defaults, overrides, errors with their path', () => {
    const c = parseRulesConfig({ stage: { sync_incident: { min_terminals: 25, window: '5m' }, governor: { max_freezes: 0 } } });
    expect(c.stage.sync_incident).toEqual({ ...defaultRulesConfig().stage.sync_incident, min_terminals: 25, window: 5 * 60_000 });
    expect(c.stage.governor).toEqual({ ...defaultRulesConfig().stage.governor, max_freezes: 0 });
    expect(defaultRulesConfig().stage).toEqual({
      sync_incident: { enabled: true, min_terminals: 10, min_share: 0.05, window: 15 * 60_000, active_within: 24 * 3_600_000, quiet: 30 * 60_000 },
      governor: { suppress_during_incident: true, max_freezes: 20, max_freezes_per_merchant: 3, freeze_window: 3_600_000 },
    });
    expect(problemsOf({ stage: { sync_incident: { min_share: 2 }, governor: { max_freezes: -1, cap: 1 } } })).toEqual([
      'stage.sync_incident.min_share: expected a number between 0 and 1, got 2',
      'stage.governor.max_freezes: expected an integer >= 0, got -1',
      'stage.governor.cap: unknown key (expected one of suppress_during_incident, max_freezes, max_freezes_per_merchant, freeze_window)',
    ]);
  });

  it('names the key path and the problem', () => {
    expect(() => parseRulesConfig({ rules: { abnormal_amount: { ratio: 'x' } } })).toThrow('rules.abnormal_amount.ratio: expected a number >= 3, got "x"');
    expect(problemsOf({ rules: { abnormal_amount: { ratio: 2.5 } } })).toEqual(['rules.abnormal_amount.ratio: expected a number >= 3, got 2.5']);
    expect(problemsOf({ rules: { abnormal_amount: { min_sales: 2.5 } } })).toEqual(['rules.abnormal_amount.min_sales: expected an integer between 1 and 1000000, got 2.5']);
    expect(problemsOf({ rules: { sync_lag: { threshold: '15 minutes' } } })[0]).toMatch(/^rules\.sync_lag\.threshold: expected a duration/);
    expect(problemsOf({ rules: { sync_lag: { enabled: 'off' } } })).toEqual(['rules.sync_lag.enabled: expected true or false, got "off"']);
    expect(problemsOf({ rules: { sync_lag: { severity: 'urgent' } } })).toEqual(['rules.sync_lag.severity: expected one of low, medium, high, critical, got "urgent"']);
    expect(problemsOf({ rules: { duplicate_charge: { windw: '5m' } } })).toEqual(['rules.duplicate_charge.windw: unknown key (expected one of enabled, severity, mode, window)']);
    expect(problemsOf({ rulez: {} })[0]).toBe('rulez: unknown key (expected one of version, engine, rules, overrides, policy, shadow, stage)');
    expect(problemsOf({ rules: { no_such_rule: {} } })[0]).toMatch(/^rules\.no_such_rule: unknown key/);
    expect(problemsOf({ version: 0 })).toEqual(['version: expected an integer >= 1, got 0']);
    expect(problemsOf({ version: 'v2' })).toEqual(['version: expected an integer >= 1, got "v2"']);
    expect(parseRulesConfig({ version: 7 }).version).toBe(7);
    expect(problemsOf([1, 2])).toEqual(['(root): expected a mapping, got [1,2]']);
  });

  it('reports every problem at once', () => {
    const e = (() => {
      try {
        parseRulesConfig({ rules: { abnormal_amount: { ratio: 1 }, sync_lag: { threshold: -5 } }, policy: { sync_lag: ['PAGE_SOMEONE'] } });
      } catch (err) {
        return err as RulesConfigError;
      }
      throw new Error('expected an error');
    })();
    expect(e.issues.map((i) => i.path)).toEqual(['rules.abnormal_amount.ratio', 'rules.sync_lag.threshold', 'policy.sync_lag[0]']);
    expect(e.message).toMatch(/^3 problems in the rules config:\n {2}- rules\.abnormal_amount\.ratio: /);
  });

  it('reports field problems and cross-field problems together (a bad value does not hide a bad combination)', () => {
    // The field problem, and the three cross-field problems of the valid rest (the invalid ratio takes its default).
    expect(problemsOf({ engine: { terminal_idle_ttl: '1m', refund_lookback: '1h' }, rules: { abnormal_amount: { ratio: 'x' } } }).map((p) => p.split(':')[0])).toEqual([
      'rules.abnormal_amount.ratio',
      'engine.terminal_idle_ttl',
      'engine.refund_lookback',
      'rules.refund_after_deadline.deadline',
    ]);
    // Two cross-field problems on the engine section are both reported (the lookback is not skipped
    // because the idle TTL was refused).
    expect(problemsOf({ engine: { terminal_idle_ttl: '1m', refund_lookback: '1h' } }).map((p) => p.split(':')[0])).toEqual(['engine.terminal_idle_ttl', 'engine.refund_lookback', 'rules.refund_after_deadline.deadline']);
    // An unknown key is dropped before the cross-field checks.
    expect(problemsOf({ engine: { terminal_idle_ttl: '1m', refund_lookback: '1h' }, bogus: 1 }).map((p) => p.split(':')[0])).toEqual([
      'bogus',
      'engine.terminal_idle_ttl',
      'engine.refund_lookback',
      'rules.refund_after_deadline.deadline',
    ]);
    // A refused input of the cross-field checks stops them: its default would make up a problem
    // (here: a deadline longer than the default lookback, which the user did not write).
    expect(problemsOf({ engine: { refund_lookback: 'sixty days' }, rules: { refund_after_deadline: { deadline: '30d' } } })).toEqual([expect.stringMatching(/^engine\.refund_lookback: /)]);
    // Not plain data (a caller's object): the field problems, no crash.
    expect(problemsOf({ rules: { abnormal_amount: { ratio: () => 1 } } })).toEqual([expect.stringMatching(/^rules\.abnormal_amount\.ratio: /)]);
  });

  it('validates overrides, and refuses a per-terminal duplicate window', () => {
    expect(problemsOf({ overrides: { merchants: { M1: { abnormal_amount: { ratio: 'big' } } } } })).toEqual(['overrides.merchants.M1.abnormal_amount.ratio: expected a number >= 3, got "big"']);
    expect(problemsOf({ overrides: { terminals: { T1: { duplicate_charge: { window: '5m' } } } } })[0]).toMatch(/^overrides\.terminals\.T1\.duplicate_charge\.window: cannot be set per terminal/);
    expect(problemsOf({ overrides: { shops: {} } })[0]).toMatch(/^overrides\.shops: unknown key/);
    expect(problemsOf({ overrides: { merchants: { M1: { sync_lagg: {} } } } })[0]).toMatch(/^overrides\.merchants\.M1\.sync_lagg: unknown key/);
  });

  it('validates the policy: kinds, targets the alert has, no duplicates', () => {
    expect(problemsOf({ policy: { sync_lag: ['FREEZE_CARD'] } })).toEqual(['policy.sync_lag[0]: FREEZE_CARD needs a card, and sync_lag alerts have none']);
    expect(problemsOf({ policy: { sequence_gap: [{ kind: 'REVIEW_REFUND' }] } })[0]).toMatch(/^policy\.sequence_gap\[0\]: REVIEW_REFUND needs a transaction/);
    expect(problemsOf({ policy: { duplicate_charge: ['NOTIFY_MERCHANT', 'NOTIFY_MERCHANT'] } })).toEqual(['policy.duplicate_charge[1]: NOTIFY_MERCHANT is listed twice']);
    expect(problemsOf({ policy: { duplicate_charge: [{ kind: 'FREEZE_CARD', expires_after: 'soon' }] } })[0]).toMatch(/^policy\.duplicate_charge\[0\]\.expires_after: expected a duration/);
    expect(problemsOf({ policy: { duplicate_charge: 'NOTIFY_MERCHANT' } })[0]).toMatch(/^policy\.duplicate_charge: expected a list of actions/);
    const c = parseRulesConfig({ policy: { abnormal_amount: ['HOLD_SETTLEMENT', { kind: 'FREEZE_CARD', expires_after: '2h' }], sync_lag: null } });
    expect(c.policy.abnormal_amount).toEqual([
      { kind: 'HOLD_SETTLEMENT', expires_after: null },
      { kind: 'FREEZE_CARD', expires_after: 7_200_000 },
    ]);
    expect(c.policy.sync_lag).toEqual([]);
  });

  it('checks cross-field constraints', () => {
    expect(problemsOf({ engine: { terminal_idle_ttl: '20m' } })[0]).toMatch(/^engine\.terminal_idle_ttl: must be longer than the longest sequence_gap timeout/);
    expect(problemsOf({ engine: { refund_lookback: '12h' } })[0]).toMatch(/^engine\.refund_lookback: must be at least allowed_lateness/);
  });

  it('reports unparsable text as a file problem', () => {
    expect(() => loadRulesConfig('rules: [', 'yaml')).toThrow(/^\(file\): not valid YAML/);
    expect(() => loadRulesConfig('{', 'json')).toThrow(/^\(file\): not valid JSON/);
  });

  it('resolves overrides: terminal over merchant over base', () => {
    const c = parseRulesConfig({
      rules: { abnormal_amount: { ratio: 12 } },
      overrides: { merchants: { M1: { abnormal_amount: { ratio: 20, min_sales: 5 } } }, terminals: { T1: { abnormal_amount: { ratio: 30 } } } },
    });
    expect(resolveRules(c, 'M1', 'T1').abnormal_amount).toMatchObject({ ratio: 30, min_sales: 5, sample_size: 101 });
    expect(resolveRules(c, 'M1', 'T2').abnormal_amount).toMatchObject({ ratio: 20, min_sales: 5 });
    expect(resolveRules(c, 'M2', 'T3').abnormal_amount.ratio).toBe(12);
    expect(resolveRules(c, 'M2', 'T3')).toBe(c.rules); // no overrides: no copy
  });

  it('treats ids like __proto__ and constructor as plain keys', () => {
    const c = loadRulesConfig('{"overrides":{"merchants":{"__proto__":{"sync_lag":{"enabled":false}}}}}', 'json');
    expect(Object.keys(c.overrides.merchants)).toEqual(['__proto__']);
    expect(resolveRules(c, '__proto__', 'T1').sync_lag.enabled).toBe(false);
    expect(resolveRules(c, 'constructor', 'toString')).toBe(c.rules);
  });

  it('is idempotent and JSON round-trips (property)', () => {
    const dur = fc.oneof(fc.integer({ min: 1, max: 10 ** 9 }), fc.constantFrom('90s', '10m', '2h', '3d'));
    const raw = fc.record(
      {
        engine: fc.record({ allowed_lateness: fc.constantFrom('1h', '24h'), refund_lookback: fc.constantFrom('8d', '30d') }, { requiredKeys: [] }),
        rules: fc.record(
          {
            duplicate_charge: fc.record({ enabled: fc.boolean(), window: fc.constantFrom('1m', '10m', 60_000) }, { requiredKeys: [] }),
            abnormal_amount: fc.record({ ratio: fc.double({ min: 3, max: 100, noNaN: true, minExcluded: true }), min_sales: fc.integer({ min: 1, max: 500 }) }, { requiredKeys: [] }),
            sync_lag: fc.record({ threshold: dur, severity: fc.constantFrom('low', 'high') }, { requiredKeys: [] }),
          },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(raw, (r) => {
        const a = parseRulesConfig(r);
        expect(parseRulesConfig(JSON.parse(JSON.stringify(a)))).toEqual(a);
      }),
    );
  });
});
