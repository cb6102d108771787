// The engine API the live detector relies on: outputs, actions, clock, snapshots, stats.
import { describe, expect, it } from 'vitest';
import { alertId, createChangelogView, createRuleEngine, defaultRulesConfig, parseRulesConfig, type EngineOutput, type RuleEngine } from '../src/index.js';
import { HOUR, MIN, SEC, Scenario, T0 } from './helpers/builder.js';
import { feed } from './helpers/run.js';

const run = (e: RuleEngine, s: Scenario): EngineOutput => {
  const out: EngineOutput = { alerts: [], actions: [], shadowAlerts: [] };
  for (const t of s.events) {
    const o = feed(e, t);
    out.alerts.push(...o.alerts);
    out.actions.push(...o.actions);
  }
  return out;
};

describe('engine outputs', () => {
  it('returns one shared, frozen empty result when nothing fires', () => {
    const e = createRuleEngine(defaultRulesConfig());
    const s = new Scenario();
    const a = e.onTransaction(s.sale({ at: 0, card: 'tok_a' }));
    const b = e.onTransaction(s.sale({ at: MIN, card: 'tok_b' }));
    expect(a).toBe(b);
    expect(a.alerts).toHaveLength(0);
    expect(Object.isFrozen(a.alerts)).toBe(true);
    expect(e.advanceClock(T0 + 2 * MIN)).toBe(a);
  });

  it('emits the policy actions next to each alert, with deterministic ids and expiries', () => {
    const e = createRuleEngine(defaultRulesConfig());
    const s = new Scenario();
    const a = s.sale({ at: 0, terminal: 'T1', card: 'tok_a', amount: 700 });
    const b = s.sale({ at: 2 * MIN, terminal: 'T2', card: 'tok_a', amount: 700 });
    const r = s.refund({ at: 3 * MIN, terminal: 'T3', card: 'tok_z', amount: 100, of: 'tx-nope' });
    const out = run(e, s);
    expect(out.alerts.map((x) => x.rule)).toEqual(['duplicate_charge', 'refund_without_sale']);
    const [dup, rws] = out.alerts;
    expect(dup!.alert_id).toBe(alertId('duplicate_charge', 1, [b.event_id, a.event_id]));
    expect(dup!.event_ids).toEqual([a.event_id, b.event_id]);
    expect(out.actions.map((x) => [x.kind, x.target_type, x.target_id, x.alert_id, x.expires_at])).toEqual([
      ['REVIEW_REFUND', 'TRANSACTION', b.txn_id, dup!.alert_id, null],
      ['NOTIFY_MERCHANT', 'MERCHANT', 'M1', dup!.alert_id, null],
      ['FREEZE_TERMINAL', 'TERMINAL', 'T3', rws!.alert_id, r.received_time + 24 * HOUR],
      ['NOTIFY_ACQUIRER', 'ACQUIRER', 'M1', rws!.alert_id, null],
    ]);
    for (const x of out.actions) {
      expect(x.issued_at).toBe(out.alerts.find((y) => y.alert_id === x.alert_id)!.detected_at);
      expect(x.reason).toMatch(/^(duplicate_charge|refund_without_sale)@1: /);
    }
    expect(new Set(out.actions.map((x) => x.action_id)).size).toBe(4);
    // Same input, same ids.
    expect(run(createRuleEngine(defaultRulesConfig()), s)).toEqual(out);
  });

  it('alerts carry numbers-only details and one-sentence summaries', () => {
    const e = createRuleEngine(defaultRulesConfig());
    const s = new Scenario();
    s.sale({ at: 0, lag: 3 * HOUR, card: 'tok_a' });
    const [alert] = run(e, s).alerts;
    expect(alert).toMatchObject({ rule: 'sync_lag', rule_version: 2, severity: 'low', card_token: null, details: { lag_ms: 3 * HOUR, threshold_ms: 15 * MIN, terminal_seq: 1 } });
    expect(alert!.summary).toMatch(/^Terminal T1 uploaded transaction tx-0001 3h after it was made \(threshold 15m\)/);
    for (const v of Object.values(alert!.details)) expect(typeof v).toBe('number');
  });

  it('applies policy and severity from the config', () => {
    const cfg = parseRulesConfig({ rules: { sync_lag: { severity: 'critical' } }, policy: { sync_lag: [{ kind: 'HOLD_SETTLEMENT', expires_after: '1h' }] } });
    const e = createRuleEngine(cfg);
    const t = new Scenario().sale({ at: 0, lag: HOUR });
    const o = e.onTransaction(t);
    expect(o.alerts[0]!.severity).toBe('critical');
    expect(o.actions.map((a) => [a.kind, a.target_type, a.target_id, a.expires_at])).toEqual([['HOLD_SETTLEMENT', 'MERCHANT', 'M1', t.received_time + HOUR]]);
  });
});

describe('clock and timers', () => {
  const gapScenario = (): Scenario => {
    const s = new Scenario();
    s.sale({ at: 0, card: 'tok_1', seq: 1 });
    s.sale({ at: MIN, card: 'tok_3', seq: 3 }); // seq 2 missing, due at T0 + 31 min + 1.5 s
    return s;
  };

  it('a quiet terminal times out through advanceClock alone; detected_at is the due time, not the call time', () => {
    const e = createRuleEngine(defaultRulesConfig());
    run(e, gapScenario());
    expect(e.advanceClock(T0 + 31 * MIN).alerts).toHaveLength(0);
    const o = e.advanceClock(T0 + 5 * HOUR);
    expect(o.alerts).toHaveLength(1);
    expect(o.alerts[0]).toMatchObject({ rule: 'sequence_gap', detected_at: T0 + 31 * MIN + 1500 });
    expect(o.actions[0]!.issued_at).toBe(T0 + 31 * MIN + 1500);
    expect(e.advanceClock(T0 + 6 * HOUR).alerts).toHaveLength(0);
  });

  it('the clock never goes back; setClock raises it without firing (the next call fires)', () => {
    const e = createRuleEngine(defaultRulesConfig());
    run(e, gapScenario());
    e.advanceClock(T0 + 10 * MIN);
    e.advanceClock(T0);
    expect(e.clock()).toBe(T0 + 10 * MIN);
    e.setClock(T0 + HOUR);
    e.setClock(T0);
    expect(e.clock()).toBe(T0 + HOUR);
    expect(e.advanceClock(0).alerts.map((a) => a.rule)).toEqual(['sequence_gap']);
    expect(() => e.advanceClock(Number.NaN)).toThrow(TypeError);
    expect(() => e.setClock(Number.POSITIVE_INFINITY)).toThrow(TypeError);
  });

  it('fires due timers before applying the arriving event', () => {
    const e = createRuleEngine(defaultRulesConfig());
    run(e, gapScenario());
    const late = new Scenario().sale({ at: 30 * SEC, recvAt: 2 * HOUR, card: 'tok_2', seq: 2 });
    const o = e.onTransaction(late);
    expect(o.alerts.map((a) => a.rule)).toEqual(['sequence_gap', 'sync_lag']);
  });
});

describe('state, snapshots and changelog', () => {
  it('reports its state size', () => {
    const e = createRuleEngine(defaultRulesConfig());
    const s = new Scenario();
    s.sale({ at: 0, terminal: 'T1', card: 'tok_a' });
    s.sale({ at: MIN, terminal: 'T2', card: 'tok_b' });
    s.sale({ at: 2 * MIN, terminal: 'T1', merchant: 'M2', card: 'tok_a', seq: 5 });
    s.sale({ at: 3 * MIN, terminal: 'T1', merchant: 'M2', card: 'tok_c', seq: 9 });
    s.refund({ at: 4 * MIN, terminal: 'T2', card: 'tok_a', amount: 100, of: 'tx-unknown' });
    run(e, s);
    expect(e.stats()).toMatchObject({ merchants: 2, terminals: 3, cards: 4, sales: 5, duplicateLegs: 4, pendingGaps: 1, samples: 3, events: 5, lateSales: 0, clock: T0 + 4 * MIN + 1500 });
  });

  it('the changelog view returns the entities changed since the last call, as plain JSON', () => {
    const e = createRuleEngine(defaultRulesConfig());
    const view = createChangelogView(e);
    const s = new Scenario();
    e.onTransaction(s.sale({ at: 0, merchant: 'M1', card: 'tok_a' }));
    e.onTransaction(s.sale({ at: MIN, merchant: 'M2', terminal: 'T7', card: 'tok_b' }));
    const first = view.takeChanges();
    expect(first.map(([k]) => k)).toEqual(['M1\u001ft\u001fT1', 'M2\u001ft\u001fT7', 'M1\u001fs\u001ftx-0001', 'M2\u001fs\u001ftx-0002']);
    expect(JSON.parse(JSON.stringify(first))).toEqual(first);
    expect(first[0]![1]).toMatchObject({ id: 'T1', max_seq: 1, sample: [1250], lag_episode: false, sales_seen: 1 });
    expect(first[2]![1]).toMatchObject({ sale: { txn_id: 'tx-0001', dup: true, seen: true } });
    expect(view.takeChanges()).toEqual([]);
    e.onTransaction(s.sale({ at: 2 * MIN, merchant: 'M2', terminal: 'T7', card: 'tok_c' }));
    expect(view.takeChanges().map(([k]) => k.split('\u001f')[0])).toEqual(['M2', 'M2']);
  });

  it('restoreMerchant replaces or removes one merchant; restoring raises the clock', () => {
    const a = createRuleEngine(defaultRulesConfig());
    const viewA = createChangelogView(a);
    const s = new Scenario();
    a.onTransaction(s.sale({ at: 0, card: 'tok_a', amount: 999 }));
    const b = createRuleEngine(defaultRulesConfig());
    const viewB = createChangelogView(b);
    b.onTransaction(new Scenario('other').sale({ at: -HOUR, card: 'tok_zz', amount: 999 }));
    viewB.takeChanges();
    b.setClock(a.clock());
    viewB.restore(viewA.takeChanges().map(([k, v]) => [k, v!]));
    expect(b.clock()).toBe(T0 + 1500);
    expect(viewB.takeChanges()).toEqual([]); // the restored state is already in the changelog
    const dup = b.onTransaction(s.sale({ at: MIN, card: 'tok_a', amount: 999, terminal: 'T2' }));
    expect(dup.alerts.map((x) => x.rule)).toEqual(['duplicate_charge']);
    b.restoreMerchant('M1', null);
    expect(b.stats().merchants).toBe(0);
  });

  it('a sale row is held for refund_lookback + allowed_lateness of clock, with the lateness in force (setRules raising it keeps rows filed earlier)', () => {
    const e = createRuleEngine(parseRulesConfig({ engine: { allowed_lateness: '1h' } }));
    const s = new Scenario();
    e.onTransaction(s.sale({ at: 0, card: 'tok_a' }));
    e.setRules(parseRulesConfig({ engine: { allowed_lateness: '24h' } }));
    e.advanceClock(T0 + 8 * 24 * HOUR + 2 * HOUR); // past 8 d + 1 h: filed under the old lateness, still held
    expect(e.stats()).toMatchObject({ sales: 1 });
    e.advanceClock(T0 + 9 * 24 * HOUR + 10 * 60_000);
    expect(e.stats()).toMatchObject({ sales: 0 });
  });

  it('forgets expired state and tombstones every entity', () => {
    const e = createRuleEngine(defaultRulesConfig());
    const view = createChangelogView(e);
    const s = new Scenario();
    e.onTransaction(s.sale({ at: 0, card: 'tok_a' }));
    view.takeChanges();
    e.advanceClock(T0 + 2 * 24 * HOUR);
    expect(e.stats()).toMatchObject({ sales: 1, duplicateLegs: 0, cards: 0, terminals: 1 });
    e.advanceClock(T0 + 9 * 24 * HOUR); // the 8 d refund lookback + the 24 h allowed lateness: still held
    expect(e.stats()).toMatchObject({ sales: 1, terminals: 1 });
    e.advanceClock(T0 + 9 * 24 * HOUR + 10 * 60_000); // past it (and the next 5 min sweep)
    expect(e.stats()).toMatchObject({ sales: 0, terminals: 1 });
    e.advanceClock(T0 + 31 * 24 * HOUR);
    expect(e.stats()).toMatchObject({ merchants: 0, terminals: 0, sales: 0 });
    expect(view.takeChanges().sort()).toEqual([
      ['M1\u001fs\u001ftx-0001', null],
      ['M1\u001ft\u001fT1', null],
    ]);
  });

  it('a refund made more than the lookback after its sale (event time) no longer finds it, though the row is still held', () => {
    const e = createRuleEngine(defaultRulesConfig());
    const s = new Scenario();
    const sale = s.sale({ at: 0, card: 'tok_a', amount: 5000 });
    e.onTransaction(sale);
    const ok = e.onTransaction(s.refund({ at: 6 * 24 * HOUR, card: 'tok_a', amount: 100, of: sale.txn_id }));
    expect(ok.alerts).toHaveLength(0);
    const late = e.onTransaction(s.refund({ at: 8 * 24 * HOUR + MIN, card: 'tok_a', amount: 100, of: sale.txn_id })); // 8 d lookback
    expect(late.alerts.map((a) => [a.rule, a.details.sale_not_found])).toEqual([['refund_without_sale', 1]]);
  });

  it('tracks changed entities (terminals, sales) and tombstones removed ones, O(changes) per call', () => {
    const e = createRuleEngine(defaultRulesConfig());
    expect(e.takeChangedEntities()).toEqual([]); // starts tracking
    const s = new Scenario();
    const sale = s.sale({ at: 0, terminal: 'T1', card: 'tok_a', amount: 900 });
    e.onTransaction(sale);
    e.onTransaction(s.sale({ at: MIN, terminal: 'T2', card: 'tok_b', amount: 500 }));
    const first = e.takeChangedEntities();
    expect(first.map((c) => [c.kind, c.id])).toEqual([
      ['terminal', 'T1'],
      ['terminal', 'T2'],
      ['sale', sale.txn_id],
      ['sale', 'tx-0002'],
    ]);
    expect(e.takeChangedEntities()).toEqual([]);
    e.onTransaction(s.refund({ at: 2 * MIN, terminal: 'T2', card: 'tok_a', amount: 100, of: sale.txn_id }));
    const second = e.takeChangedEntities();
    expect(second.map((c) => [c.kind, c.id])).toEqual([
      ['terminal', 'T2'],
      ['sale', sale.txn_id],
    ]);
    expect(second[1]!.value).toMatchObject({ refunded: 100, refunds: [{ amount: 100 }] });
    // Everything expires: tombstones for every entity.
    e.advanceClock(T0 + 40 * 24 * HOUR);
    expect(
      e
        .takeChangedEntities()
        .map((c) => [c.kind, c.id, c.value])
        .sort(),
    ).toEqual([
      ['sale', sale.txn_id, null],
      ['sale', 'tx-0002', null],
      ['terminal', 'T1', null],
      ['terminal', 'T2', null],
    ]);
  });

  it('the changelog view writes keyed entities and restores them', () => {
    const a = createRuleEngine(defaultRulesConfig());
    const view = createChangelogView(a);
    const s = new Scenario();
    a.onTransaction(s.sale({ at: 0, terminal: 'T1', card: 'tok_a', amount: 900 }));
    const changes = view.takeChanges();
    expect(changes.map(([k]) => k)).toEqual(['M1\u001ft\u001fT1', 'M1\u001fs\u001ftx-0001']);
    const b = createRuleEngine(defaultRulesConfig());
    const viewB = createChangelogView(b);
    b.setClock(a.clock());
    viewB.restore(changes.map(([k, v]) => [k, v!]));
    expect(viewB.takeChanges()).toEqual([]); // restored state is not a change
    const dup = b.onTransaction(s.sale({ at: MIN, terminal: 'T2', card: 'tok_a', amount: 900 }));
    expect(dup.alerts.map((x) => x.rule)).toEqual(['duplicate_charge']);
  });
});
