import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRuleEngine, parseRulesConfig } from '../../../index.js';
import { MIN, Scenario } from '../../../../test/helpers/builder.js';
import { runEvents } from '../../../../test/helpers/run.js';

describe('refund_without_sale', () => {
  it('config: common fields only; a FREEZE_TERMINAL and NOTIFY_ACQUIRER policy by default', () => {
    const c = parseRulesConfig({});
    expect(c.rules.refund_without_sale).toEqual({ enabled: true, severity: 'high', mode: 'active' });
    expect(c.policy.refund_without_sale.map((p) => p.kind)).toEqual(['FREEZE_TERMINAL', 'NOTIFY_ACQUIRER']);
    expect(() => parseRulesConfig({ rules: { refund_without_sale: { window: '1m' } } })).toThrow(/^rules\.refund_without_sale\.window: unknown key/);
  });

  it('no original, unknown sale, another merchant\'s sale, a voided sale: fires; the merchant\'s sale at another till: does not', () => {
    const s = new Scenario();
    const sale = s.sale({ at: 0, terminal: 'T1', card: 'a', amount: 900 });
    s.refund({ at: MIN, terminal: 'T2', card: 'a', amount: 100, of: sale.txn_id });
    const noOrig = s.refund({ at: 2 * MIN, card: 'b', amount: 100, of: null });
    const unknown = s.refund({ at: 3 * MIN, card: 'b', amount: 100, of: 'tx-nope' });
    const otherMerchant = s.refund({ at: 4 * MIN, merchant: 'M2', card: 'a', amount: 100, of: sale.txn_id });
    s.void({ at: 5 * MIN, card: 'a', of: sale.txn_id });
    const voided = s.refund({ at: 6 * MIN, card: 'a', amount: 100, of: sale.txn_id });
    const out = runEvents(createRuleEngine(parseRulesConfig({})), s.events).alerts.filter((a) => a.rule === 'refund_without_sale');
    expect(out.map((a) => [a.event_ids[0], Object.keys(a.details).filter((k) => !['amount_minor', 'lookback_ms'].includes(k))])).toEqual([
      [noOrig.event_id, ['no_original_txn']],
      [unknown.event_id, ['sale_not_found']],
      [otherMerchant.event_id, ['sale_not_found']],
      [voided.event_id, ['sale_voided']],
    ]);
  });

  it('a refund fires iff its sale was not seen by the merchant (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ sold: fc.boolean(), refundFirst: fc.boolean() }), { minLength: 1, maxLength: 20 }), (txns) => {
        const s = new Scenario();
        const expected: string[] = [];
        txns.forEach((x, i) => {
          const refund = () => s.refund({ at: i * MIN + 30, card: `c${i}`, amount: 10, of: `sale-${i}`, txn: `rf-${i}`, id: `ev-rf-${i}` });
          if (x.refundFirst || !x.sold) {
            refund();
            expected.push(`ev-rf-${i}`);
          }
          if (x.sold) s.sale({ at: i * MIN, card: `c${i}`, amount: 100, txn: `sale-${i}` });
          if (x.sold && !x.refundFirst) refund();
        });
        const got = runEvents(createRuleEngine(parseRulesConfig({})), s.events).alerts.filter((a) => a.rule === 'refund_without_sale').map((a) => a.event_ids[0]);
        expect(got).toEqual(expected);
      }),
    );
  });
});
