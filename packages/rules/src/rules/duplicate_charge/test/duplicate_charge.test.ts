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
});
