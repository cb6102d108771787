import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRuleEngine, parseRulesConfig } from '../../../index.js';
import { MIN, Scenario } from '../../../../test/helpers/builder.js';
import { runEvents } from '../../../../test/helpers/run.js';

describe('refund_exceeds_sale', () => {
  it('config: common fields only, critical by default', () => {
    expect(parseRulesConfig({}).rules.refund_exceeds_sale).toEqual({ enabled: true, severity: 'critical', mode: 'active' });
  });

  it('fires on the refund that crosses the sale and every one after it; a refund delivered twice counts once', () => {
    const s = new Scenario();
    const sale = s.sale({ at: 0, terminal: 'T1', card: 'a', amount: 1000 });
    const r1 = s.refund({ at: MIN, terminal: 'T2', card: 'a', amount: 600, of: sale.txn_id });
    s.again(r1);
    const r2 = s.refund({ at: 2 * MIN, terminal: 'T3', card: 'a', amount: 500, of: sale.txn_id });
    const r3 = s.refund({ at: 3 * MIN, terminal: 'T1', card: 'a', amount: 1, of: sale.txn_id });
    const out = runEvents(createRuleEngine(parseRulesConfig({})), s.events).alerts;
    expect(out.map((a) => [a.rule, a.event_ids[0], a.terminal_id, a.details.refunded_total_minor, a.details.excess_minor])).toEqual([
      ['refund_exceeds_sale', r2.event_id, 'T3', 1100, 100],
      ['refund_exceeds_sale', r3.event_id, 'T1', 1101, 101],
    ]);
  });

  it('fires for exactly the refunds whose running total exceeds the sale, whether the sale arrives first or last (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 8 }), fc.boolean(), (saleAmount, refunds, saleLast) => {
        const s = new Scenario();
        const add = () => s.sale({ at: 0, card: 'a', amount: saleAmount, txn: 'the-sale', lag: saleLast ? 20 * MIN : 1000 });
        if (!saleLast) add();
        refunds.forEach((amount, i) => s.refund({ at: (i + 1) * MIN, card: 'a', amount, of: 'the-sale', id: `ev-rf-${i}` }));
        if (saleLast) add();
        let total = 0;
        const expected = refunds.map((a, i) => ((total += a) > saleAmount ? `ev-rf-${i}` : null)).filter((x) => x !== null);
        const got = runEvents(createRuleEngine(parseRulesConfig({})), s.events).alerts.filter((a) => a.rule === 'refund_exceeds_sale');
        expect(got.map((a) => a.event_ids[0])).toEqual(expected);
      }),
    );
  });
});
