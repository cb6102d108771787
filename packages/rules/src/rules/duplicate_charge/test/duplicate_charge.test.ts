import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRuleEngine, parseRulesConfig } from '../../../index.js';
import { MIN, Scenario } from '../../../../test/helpers/builder.js';
import { runEvents } from '../../../../test/helpers/run.js';

describe('duplicate_charge', () => {
  it('config: default window 10m; the window cannot be set per terminal', () => {
    expect(parseRulesConfig({}).rules.duplicate_charge).toEqual({ enabled: true, severity: 'high', mode: 'active', window: 10 * MIN });
    expect(() => parseRulesConfig({ overrides: { terminals: { T1: { duplicate_charge: { window: '1m' } } } } })).toThrow(/^overrides\.terminals\.T1\.duplicate_charge\.window: cannot be set per terminal/);
    expect(parseRulesConfig({ overrides: { merchants: { M1: { duplicate_charge: { window: '1m' } } } } }).overrides.merchants.M1).toEqual({ duplicate_charge: { window: MIN } });
  });

  it('pairs two approved sales of one card and amount across terminals; the alert belongs to the later leg', () => {
    const s = new Scenario();
    const a = s.sale({ at: 0, terminal: 'T1', card: 'tok', amount: 700 });
    s.sale({ at: MIN, terminal: 'T1', card: 'tok', amount: 701 });
    s.sale({ at: MIN, terminal: 'T2', card: 'tok', amount: 700, status: 'DECLINED' });
    const b = s.sale({ at: 2 * MIN, terminal: 'T2', card: 'tok', amount: 700 });
    const out = runEvents(createRuleEngine(parseRulesConfig({})), s.events);
    expect(out.alerts.map((x) => [x.rule, x.terminal_id, x.event_ids])).toEqual([['duplicate_charge', 'T2', [a.event_id, b.event_id]]]);
    expect(out.actions.map((x) => [x.kind, x.target_id])).toEqual([
      ['REVIEW_REFUND', b.txn_id],
      ['NOTIFY_MERCHANT', 'M1'],
    ]);
  });

  it('fires iff the legs are <= window apart, with the same alert whichever leg arrives first (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 20 * MIN }), fc.boolean(), fc.constantFrom('T1', 'T2'), (gap, swap, terminal) => {
        const run = (first: boolean) => {
          const s = new Scenario();
          const legs = [
            { at: 0, txn: 'tx-a', id: 'ev-a', terminal: 'T1' },
            { at: gap, txn: 'tx-b', id: 'ev-b', terminal },
          ];
          for (const l of first ? legs : [...legs].reverse()) s.sale({ ...l, card: 'tok', amount: 999, lag: 5 * MIN });
          return runEvents(createRuleEngine(parseRulesConfig({})), s.events).alerts;
        };
        const x = run(swap);
        expect(x.length).toBe(gap <= 10 * MIN ? 1 : 0);
        // Only the detection time (the second arrival) depends on the order.
        const sansTime = (xs: typeof x) => xs.map(({ detected_at: _, ...a }) => a);
        expect(sansTime(run(!swap))).toEqual(sansTime(x));
        if (x.length) expect(x[0]).toMatchObject({ event_ids: ['ev-a', 'ev-b'], terminal_id: terminal, details: { gap_ms: gap } });
      }),
    );
  });

  describe('resolution (alert updates)', () => {
    const pair = (s: Scenario, at = 0) => [
      s.sale({ at, terminal: 'T1', card: 'tok', amount: 1000, txn: `tx-a${at}` }),
      s.sale({ at: at + MIN, terminal: 'T1', card: 'tok', amount: 1000, txn: `tx-b${at}` }),
    ];

    it('closes once: a later void, reversal or refund of an already resolved duplicate changes nothing', () => {
      const s = new Scenario();
      pair(s);
      const r1 = s.refund({ at: 5 * MIN, card: 'tok', amount: 600, of: 'tx-a0' });
      const r2 = s.refund({ at: 6 * MIN, card: 'tok', amount: 400, of: 'tx-b0' });
      s.void({ at: 7 * MIN, kind: 'REVERSAL', card: 'tok', amount: 1000, of: 'tx-b0' });
      s.refund({ at: 8 * MIN, card: 'tok', amount: 1000, of: 'tx-a0' });
      const out = runEvents(createRuleEngine(parseRulesConfig({})), s.events);
      expect(out.updates.map((u) => [u.alert_id, u.resolution, u.resolved_by_event_ids, u.resolved_at])).toEqual([
        [out.alerts[0]!.alert_id, 'refunded', [r1.event_id, r2.event_id].sort(), r2.received_time],
      ]);
      expect(out.updates[0]!.summary).toBe(
        'The duplicate charge of 10.00 EUR to card tok at merchant M1 (transactions tx-a0 and tx-b0) was refunded: 2 approved refunds of its legs adding up to 10.00 EUR.',
      );
    });

    it('a shadow alert gets no update (mode: shadow); with a shadow instance only the active alert is closed, once', () => {
      for (const [cfg, updates] of [
        [{ rules: { duplicate_charge: { mode: 'shadow' } } }, 0],
        [{ shadow: { duplicate_charge: {} } }, 1],
      ] as const) {
        const s = new Scenario();
        pair(s);
        s.void({ at: 3 * MIN, card: 'tok', amount: 1000, of: 'tx-a0' });
        const out = runEvents(createRuleEngine(parseRulesConfig(cfg)), s.events);
        expect(out.shadowAlerts.filter((a) => a.rule === 'duplicate_charge')).toHaveLength(1);
        expect(out.updates).toHaveLength(updates);
        for (const u of out.updates) expect(out.alerts.map((a) => a.alert_id)).toContain(u.alert_id);
      }
    });

    it('a leg of two alerts (three charges) closes both with one void; refunds of a leg beyond the lookback do not count', () => {
      const s = new Scenario();
      const [, b] = pair(s);
      s.sale({ at: 2 * MIN, terminal: 'T1', card: 'tok', amount: 1000, txn: 'tx-c' });
      const v = s.void({ at: 3 * MIN, card: 'tok', amount: 1000, of: b!.txn_id });
      const out = runEvents(createRuleEngine(parseRulesConfig({})), s.events);
      expect(out.alerts).toHaveLength(2);
      expect(out.updates.map((u) => [u.resolution, u.resolved_by_event_ids])).toEqual([
        ['voided', [v.event_id]],
        ['voided', [v.event_id]],
      ]);
      expect(new Set(out.updates.map((u) => u.alert_id))).toEqual(new Set(out.alerts.map((a) => a.alert_id)));
      // Past the refund lookback (8 d) the legs are forgotten: a refund then resolves nothing.
      const late = new Scenario();
      pair(late);
      late.refund({ at: 9 * 24 * 60 * MIN, card: 'tok', amount: 1000, of: 'tx-a0' });
      expect(runEvents(createRuleEngine(parseRulesConfig({})), late.events).updates).toEqual([]);
    });
  });
});
