import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRuleEngine, parseRulesConfig } from '../../../index.js';
import { HOUR, MIN, Scenario } from '../../../../test/helpers/builder.js';
import { runEvents } from '../../../../test/helpers/run.js';

const DAY = 24 * HOUR;

describe('refund_after_deadline', () => {
  it('config: deadline 7d by default, medium, REVIEW_REFUND; the default lookback (8d) covers it', () => {
    const c = parseRulesConfig({});
    expect(c.rules.refund_after_deadline).toEqual({ enabled: true, severity: 'medium', mode: 'active', deadline: 7 * DAY });
    expect(c.engine.refund_lookback).toBe(8 * DAY);
    expect(c.policy.refund_after_deadline).toEqual([{ kind: 'REVIEW_REFUND', expires_after: null }]);
    expect(parseRulesConfig({ rules: { refund_after_deadline: { deadline: '36h' } } }).rules.refund_after_deadline.deadline).toBe(36 * HOUR);
  });

  it('validation refuses a deadline longer than the refund lookback, at every level, with its path', () => {
    expect(() => parseRulesConfig({ rules: { refund_after_deadline: { deadline: '9d' } } })).toThrow(
      'rules.refund_after_deadline.deadline: must be shorter than engine.refund_lookback (691200000 ms), got 777600000 ms',
    );
    expect(() => parseRulesConfig({ engine: { refund_lookback: '3d' } })).toThrow(/rules\.refund_after_deadline\.deadline: must be shorter than engine\.refund_lookback/);
    expect(() => parseRulesConfig({ overrides: { merchants: { M1: { refund_after_deadline: { deadline: '10d' } } } } })).toThrow(/overrides\.merchants\.M1\.refund_after_deadline\.deadline/);
    expect(() => parseRulesConfig({ overrides: { terminals: { T1: { refund_after_deadline: { deadline: '10d' } } } } })).toThrow(/overrides\.terminals\.T1\.refund_after_deadline\.deadline/);
    expect(() => parseRulesConfig({ shadow: { refund_after_deadline: { deadline: '10d' } } })).toThrow(/shadow\.refund_after_deadline\.deadline/);
    expect(() => parseRulesConfig({ rules: { refund_after_deadline: { deadline: 'soon' } } })).toThrow(/rules\.refund_after_deadline\.deadline/);
    // Equal is refused: a sale row expires once the clock passes it by the lookback, so no refund past
    // such a deadline could find its sale (every one would be refund_without_sale). Shorter is fine.
    expect(() => parseRulesConfig({ engine: { refund_lookback: '3d' }, rules: { refund_after_deadline: { deadline: '3d' } } })).toThrow(/rules\.refund_after_deadline\.deadline: must be shorter than engine\.refund_lookback \(259200000 ms\), got 259200000 ms/);
    expect(() => parseRulesConfig({ rules: { refund_after_deadline: { deadline: '8d' } } })).toThrow(/must be shorter than engine\.refund_lookback/);
    expect(parseRulesConfig({ engine: { refund_lookback: '3d' }, rules: { refund_after_deadline: { deadline: '2d' } } }).rules.refund_after_deadline.deadline).toBe(2 * DAY);
    expect(parseRulesConfig({ engine: { refund_lookback: '30d' }, rules: { refund_after_deadline: { deadline: '28d' } } }).engine.refund_lookback).toBe(30 * DAY);
  });

  it('event time decides, not arrival: a refund made on time but delivered late does not fire', () => {
    const s = new Scenario();
    const sale = s.sale({ at: 0, card: 'a', amount: 1000 });
    s.refund({ at: 6 * DAY, recvAt: 7 * DAY + 12 * HOUR, card: 'a', amount: 10, of: sale.txn_id });
    const late = s.refund({ at: 7 * DAY + MIN, card: 'a', amount: 10, of: sale.txn_id });
    const out = runEvents(createRuleEngine(parseRulesConfig({ rules: { sync_lag: { enabled: false } } })), s.events);
    expect(out.alerts.map((a) => [a.rule, a.event_ids])).toEqual([['refund_after_deadline', [sale.event_id, late.event_id]]]);
    expect(out.alerts[0]!.summary).toBe(`Refund ${late.txn_id} of 0.10 EUR at terminal T1 was made 7d after sale ${sale.txn_id}, 1m past the 7d refund deadline.`);
    expect(out.actions.map((a) => [a.kind, a.target_id])).toEqual([['REVIEW_REFUND', late.txn_id]]);
  });

  it('fires exactly for approved refunds more than the deadline after the sale, whichever arrives first (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 120 }), { minLength: 1, maxLength: 6 }), fc.boolean(), (minutes, saleLast) => {
        const deadline = 60 * MIN;
        const s = new Scenario();
        const add = () => s.sale({ at: 0, card: 'a', amount: 10_000, txn: 'the-sale', recvAt: saleLast ? 3 * HOUR : 1000 });
        if (!saleLast) add();
        minutes.forEach((m, i) => s.refund({ at: m * MIN, card: 'a', amount: 10, of: 'the-sale', id: `ev-rf-${i}`, recvAt: Math.max(m * MIN, 1000) + 1500 }));
        if (saleLast) add();
        const expected = minutes.map((m, i) => (m * MIN > deadline ? `ev-rf-${i}` : null)).filter((x) => x !== null);
        const cfg = parseRulesConfig({ rules: { refund_after_deadline: { deadline } } });
        const got = runEvents(createRuleEngine(cfg), s.events).alerts.filter((a) => a.rule === 'refund_after_deadline');
        expect(got.map((a) => a.event_ids[1])).toEqual(expected);
      }),
    );
  });

  it('a late refund in another currency than its sale is stated in its own currency (summary and alert money), whether the sale came first or last', () => {
    for (const saleLast of [false, true]) {
      const s = new Scenario();
      if (!saleLast) s.sale({ at: 0, card: 'a', amount: 10000, currency: 'EUR', txn: 'S1' });
      s.refund({ at: 7 * DAY + HOUR, card: 'a', amount: 1500, currency: 'JPY', of: 'S1', txn: 'R1' });
      if (saleLast) s.sale({ at: 0, card: 'a', amount: 10000, currency: 'EUR', txn: 'S1', recvAt: 7 * DAY + 2 * HOUR });
      const out = runEvents(createRuleEngine(parseRulesConfig({})), s.events).alerts.filter((a) => a.rule === 'refund_after_deadline');
      expect(out.map((a) => [a.currency, a.amount_minor, a.summary.split(' at terminal')[0]])).toEqual([['JPY', 1500, 'Refund R1 of 1500 JPY']]);
    }
  });
});
