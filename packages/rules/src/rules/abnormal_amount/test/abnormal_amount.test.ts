import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRuleEngine, parseRulesConfig } from '../../../index.js';
import { MIN, Scenario } from '../../../../test/helpers/builder.js';
import { runEvents } from '../../../../test/helpers/run.js';

const naiveMedian = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n & 1 ? s[n >> 1]! : (s[(n >> 1) - 1]! + s[n >> 1]!) / 2;
};

describe('abnormal_amount', () => {
  it('config: defaults, ratio >= 3, integer sample sizes', () => {
    expect(parseRulesConfig({}).rules.abnormal_amount).toEqual({ enabled: true, severity: 'medium', mode: 'active', ratio: 10, min_sales: 20, sample_size: 101 });
    expect(() => parseRulesConfig({ rules: { abnormal_amount: { ratio: 2.9 } } })).toThrow('rules.abnormal_amount.ratio: expected a number >= 3, got 2.9');
    expect(() => parseRulesConfig({ rules: { abnormal_amount: { sample_size: 0 } } })).toThrow('rules.abnormal_amount.sample_size: expected an integer between 1 and 10001, got 0');
  });

  it('ratio 3: a sale of exactly 3x the median is ordinary variation and does not fire; more than 3x does (issue 3)', () => {
    const run = (amount: number) => {
      const s = new Scenario();
      for (let i = 0; i < 21; i++) s.sale({ at: i * MIN, card: `c${i}`, amount: 1000 });
      s.sale({ at: 30 * MIN, card: 'big', amount });
      return runEvents(createRuleEngine(parseRulesConfig({ rules: { abnormal_amount: { ratio: 3 } } })), s.events).alerts.filter((a) => a.rule === 'abnormal_amount');
    };
    expect(run(3000)).toEqual([]);
    expect(run(3001)).toHaveLength(1);
  });

  it('warm-up: the 21st approved sale is the first judged; exactly ratio x fires; voided sales are not judged', () => {
    const s = new Scenario();
    for (let i = 0; i < 19; i++) s.sale({ at: i * MIN, card: `c${i}`, amount: 100 });
    s.sale({ at: 19 * MIN, card: 'big20', amount: 5000 }); // 20th: not judged
    const hit = s.sale({ at: 20 * MIN, card: 'big21', amount: 1000 }); // 21st, exactly 10x the median 100
    s.void({ at: 20 * MIN, txn: 'v1', of: 'tx-later', card: 'x' });
    s.sale({ at: 21 * MIN, card: 'big22', amount: 9000, txn: 'tx-later' }); // voided before it arrived
    const out = runEvents(createRuleEngine(parseRulesConfig({})), s.events);
    expect(out.alerts.filter((a) => a.rule === 'abnormal_amount').map((a) => [a.event_ids[0], a.details.ratio, a.details.sales_seen])).toEqual([[hit.event_id, 10, 20]]);
  });

  it('fires exactly when amount >= ratio x the median of the last N sales, after the warm-up (property against a naive model)', () => {
    const amount = fc.oneof(fc.integer({ min: 1, max: 50 }), fc.integer({ min: 100, max: 2000 }));
    fc.assert(
      fc.property(fc.array(amount, { minLength: 1, maxLength: 80 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 15 }), fc.double({ min: 3, max: 12, noNaN: true }), (amounts, minSales, size, ratio) => {
        const cfg = parseRulesConfig({ rules: { duplicate_charge: { enabled: false }, abnormal_amount: { min_sales: minSales, sample_size: size, ratio } } });
        const s = new Scenario();
        const events = amounts.map((a, i) => s.sale({ at: i * MIN, card: `c${i}`, amount: a }));
        const expected: string[] = [];
        amounts.forEach((a, i) => {
          if (i < minSales) return;
          const m = naiveMedian(amounts.slice(Math.max(0, i - size), i));
          if (m > 0 && a >= ratio * m) expected.push(events[i]!.event_id);
        });
        expect(runEvents(createRuleEngine(cfg), s.events).alerts.map((a) => a.event_ids[0])).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });
});
