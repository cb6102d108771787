import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createChangelogView, createRuleEngine, parseRulesConfig, type ChangelogValue } from '../../../index.js';
import { MIN, Scenario } from '../../../../test/helpers/builder.js';
import { collected, runEvents } from '../../../../test/helpers/run.js';

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

  describe('only refunds in the sale\'s currency count toward its total (another currency is not comparable)', () => {
    it('EUR 100.00 sale, refunds of 0.500 KWD and 15000 JPY: no alert; then EUR 60.00 and EUR 50.00: the EUR refund that crosses fires, in EUR', () => {
      const s = new Scenario();
      const sale = s.sale({ at: 0, card: 'a', amount: 10000, currency: 'EUR' });
      s.refund({ at: MIN, card: 'a', amount: 500, currency: 'KWD', of: sale.txn_id });
      s.refund({ at: 2 * MIN, card: 'a', amount: 15000, currency: 'JPY', of: sale.txn_id });
      expect(runEvents(createRuleEngine(parseRulesConfig({})), s.events).alerts.filter((a) => a.rule === 'refund_exceeds_sale')).toEqual([]);
      s.refund({ at: 3 * MIN, card: 'a', amount: 6000, currency: 'EUR', of: sale.txn_id });
      const r = s.refund({ at: 4 * MIN, card: 'a', amount: 5000, currency: 'EUR', of: sale.txn_id });
      const out = runEvents(createRuleEngine(parseRulesConfig({})), s.events).alerts.filter((a) => a.rule === 'refund_exceeds_sale');
      expect(out.map((a) => [a.event_ids[0], a.details, a.currency, a.amount_minor, a.summary])).toEqual([
        [
          r.event_id,
          { sale_amount_minor: 10000, refunded_total_minor: 11000, refunded_before_minor: 6000, refund_amount_minor: 5000, excess_minor: 1000 },
          'EUR',
          5000,
          `Approved refunds of sale ${sale.txn_id} add up to 110.00 EUR, 10.00 EUR more than the sale's 100.00 EUR; refund ${r.txn_id} of 50.00 EUR at terminal T1 crossed it.`,
        ],
      ]);
    });

    it('the sale arriving after refunds in several currencies: only its currency is counted, at its arrival and after it', () => {
      const s = new Scenario();
      s.refund({ at: MIN, card: 'a', amount: 15000, currency: 'JPY', of: 'S1' });
      s.refund({ at: 2 * MIN, card: 'a', amount: 6000, currency: 'EUR', of: 'S1' });
      s.sale({ at: 0, card: 'a', amount: 10000, currency: 'EUR', txn: 'S1', lag: 20 * MIN });
      const r = s.refund({ at: 30 * MIN, card: 'a', amount: 5000, currency: 'EUR', of: 'S1' });
      const out = runEvents(createRuleEngine(parseRulesConfig({})), s.events).alerts.filter((a) => a.rule === 'refund_exceeds_sale');
      expect(out.map((a) => [a.event_ids[0], a.details.refunded_before_minor, a.details.refunded_total_minor])).toEqual([[r.event_id, 6000, 11000]]);
    });

    it('a changelog value written when the total summed every currency is recounted on restore', () => {
      const s = new Scenario();
      const sale = s.sale({ at: 0, card: 'a', amount: 10000, currency: 'EUR', txn: 'S1' });
      s.refund({ at: MIN, card: 'a', amount: 15000, currency: 'JPY', of: 'S1' });
      s.refund({ at: 2 * MIN, card: 'a', amount: 2000, currency: 'EUR', of: 'S1' });
      const a = createRuleEngine(parseRulesConfig({}));
      const view = createChangelogView(a);
      runEvents(a, s.events);
      // As the ledger wrote it before: refunded = every refund's minor units (17000).
      const values = view.takeChanges().map(([k, v]) => {
        const sale = (v as unknown as { sale?: Record<string, unknown> }).sale;
        if (sale?.txn_id !== 'S1') return [k, v];
        expect(sale.refunded).toBe(2000);
        return [k, { ...v, sale: { ...sale, refunded: 17000 } }];
      }) as [string, ChangelogValue][];
      const b = createRuleEngine(parseRulesConfig({}));
      b.setClock(a.clock());
      createChangelogView(b).restore(values);
      const next = new Scenario('ev2');
      next.refund({ at: 3 * MIN, card: 'a', amount: 1000, currency: 'EUR', of: sale.txn_id });
      expect(runEvents(b, next.events, collected()).alerts.filter((x) => x.rule === 'refund_exceeds_sale')).toEqual([]);
    });
  });
});
