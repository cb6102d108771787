import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRuleEngine, parseRulesConfig } from '../../../index.js';
import { HOUR, MIN, Scenario } from '../../../../test/helpers/builder.js';
import { runEvents, runSplit } from '../../../../test/helpers/run.js';

const DAY = 24 * HOUR;
/** The refund-policy alerts of a run (sync_lag fires on late uploads and is not what these tests are about). */
const refundRules = (alerts: { rule: string }[]): string[] => alerts.map((a) => a.rule).filter((r) => r.startsWith('refund_'));

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

  describe('the lookback is event time: refund.event_time - sale.event_time <= engine.refund_lookback, whenever the refund is uploaded', () => {
    // Default config: lookback 8 d, allowed lateness 24 h, refund_after_deadline 7 d.
    const run = (refundAt: number, uploadedLateBy: number, config: Record<string, unknown> = {}) => {
      const s = new Scenario();
      s.sale({ at: 0, card: 'a', amount: 5000, txn: 'S1' });
      s.refund({ at: refundAt, recvAt: refundAt + uploadedLateBy, terminal: 'T2', card: 'a', amount: 5000, of: 'S1' });
      return runEvents(createRuleEngine(parseRulesConfig(config)), s.events);
    };

    it('a refund made 7 d 2 h after its sale is late (refund_after_deadline) whether uploaded on time or 23-24 h late, never refund_without_sale', () => {
      for (const late of [0, 23 * HOUR, 24 * HOUR]) {
        const out = run(7 * DAY + 2 * HOUR, late);
        expect([late, refundRules(out.alerts)]).toEqual([late, ['refund_after_deadline']]);
        expect(out.refundReasons.map((r) => r.reason)).toEqual(['policy']);
      }
    });

    it('edges: made exactly the lookback after the sale and uploaded the whole allowed lateness late, it still finds it; 1 ms later, on time or late, it does not', () => {
      expect(refundRules(run(8 * DAY, 24 * HOUR).alerts)).toEqual(['refund_after_deadline']);
      for (const late of [0, 12 * HOUR]) {
        const out = run(8 * DAY + 1, late).alerts.filter((a) => a.rule === 'refund_without_sale');
        expect(out.map((a) => a.details)).toEqual([{ amount_minor: 5000, lookback_ms: 8 * DAY, sale_not_found: 1 }]);
      }
    });

    it('lookback 7 d, deadline 6 d: a refund made 6.5 d after the sale and uploaded 20 h late is refund_after_deadline', () => {
      const out = run(6 * DAY + 12 * HOUR, 20 * HOUR, { engine: { refund_lookback: '7d' }, rules: { refund_after_deadline: { deadline: '6d' } } });
      expect(refundRules(out.alerts)).toEqual(['refund_after_deadline']);
      expect(out.alerts.find((a) => a.rule === 'refund_after_deadline')!.details.after_ms).toBe(6 * DAY + 12 * HOUR);
    });

    it('a refund beyond the lookback of a sale still held fires once, also when delivered again after a restore from the changelog', () => {
      const s = new Scenario();
      s.sale({ at: 0, card: 'a', amount: 5000, txn: 'S1' });
      const r = s.refund({ at: 8 * DAY + HOUR, terminal: 'T2', card: 'a', amount: 100, of: 'S1' });
      s.again(r);
      s.again(r);
      const config = parseRulesConfig({});
      const whole = runEvents(createRuleEngine(config), s.events);
      expect(refundRules(whole.alerts)).toEqual(['refund_without_sale']);
      expect(whole.refundReasons.map((x) => x.reason)).toEqual(['no_sale']);
      const split = runSplit(config, s.events, new Set([1, 2, 3]));
      expect(split.alerts).toEqual(whole.alerts);
      expect(split.refundReasons).toEqual(whole.refundReasons);
    });

    it('a late refund within the lookback, after a restore from the changelog (cut anywhere), gives the unsplit run\'s alerts', () => {
      const s = new Scenario();
      s.sale({ at: 0, card: 'a', amount: 5000, txn: 'S1' });
      s.refund({ at: 6 * DAY, recvAt: 6 * DAY + 23 * HOUR, terminal: 'T2', card: 'a', amount: 3000, of: 'S1' });
      s.sale({ at: 8 * DAY + 10 * HOUR, terminal: 'T9', card: 'z', amount: 100 }); // the clock passes sale + lookback
      // Made 7 d 12 h after the sale (within the 8 d lookback, past the 7 d deadline), uploaded 23 h late.
      s.refund({ at: 7 * DAY + 12 * HOUR, recvAt: 8 * DAY + 11 * HOUR, terminal: 'T2', card: 'a', amount: 3000, of: 'S1' });
      const config = parseRulesConfig({});
      const whole = runEvents(createRuleEngine(config), s.events);
      expect(refundRules(whole.alerts)).toEqual(['refund_exceeds_sale', 'refund_after_deadline']);
      for (const cut of [1, 2, 3]) expect(runSplit(config, s.events, new Set([cut])).alerts).toEqual(whole.alerts);
    });
  });
});
