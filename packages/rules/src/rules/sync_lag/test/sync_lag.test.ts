import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRuleEngine, parseRulesConfig } from '../../../index.js';
import { MIN, Scenario } from '../../../../test/helpers/builder.js';
import { runEvents } from '../../../../test/helpers/run.js';

const only = (rule: string) => parseRulesConfig({ rules: Object.fromEntries(['duplicate_charge', 'abnormal_amount', 'sequence_gap', 'refund_without_sale', 'refund_exceeds_sale'].filter((r) => r !== rule).map((r) => [r, { enabled: false }])) });

describe('sync_lag', () => {
  it('config: default threshold 15m, durations, errors with their path', () => {
    expect(parseRulesConfig({}).rules.sync_lag).toEqual({ enabled: true, severity: 'low', mode: 'active', threshold: 15 * MIN });
    expect(parseRulesConfig({ rules: { sync_lag: { threshold: '2m' } } }).rules.sync_lag.threshold).toBe(2 * MIN);
    expect(() => parseRulesConfig({ rules: { sync_lag: { threshold: 0 } } })).toThrow('rules.sync_lag.threshold: expected a duration of at least 1 ms, got 0');
  });

  it('fires once per episode: exactly 15m is on time, an on-time event ends the episode', () => {
    const s = new Scenario();
    s.sale({ at: 0, lag: 15 * MIN, card: 'a' });
    const first = s.sale({ at: MIN, lag: 15 * MIN + 1, card: 'b' });
    s.sale({ at: 2 * MIN, lag: 40 * MIN, card: 'c' });
    s.sale({ at: 3 * MIN, lag: 1000, card: 'd' });
    const second = s.sale({ at: 4 * MIN, lag: 20 * MIN, card: 'e' });
    const out = runEvents(createRuleEngine(only('sync_lag')), s.events);
    expect(out.alerts.map((a) => [a.event_ids, a.details.lag_ms])).toEqual([
      [[first.event_id], 15 * MIN + 1],
      [[second.event_id], 20 * MIN],
    ]);
    expect(out.actions.map((a) => a.kind)).toEqual(['NOTIFY_MERCHANT', 'NOTIFY_MERCHANT']);
  });

  it('one alert per maximal run of late events of a terminal (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 60 }), (late) => {
        const s = new Scenario();
        const events = late.map((l, i) => s.sale({ at: i * MIN, lag: l ? 20 * MIN : 1000, card: `c${i}` }));
        const expected = events.filter((_, i) => late[i] && !late[i - 1]).map((t) => [t.event_id]);
        expect(runEvents(createRuleEngine(only('sync_lag')), s.events).alerts.map((a) => a.event_ids)).toEqual(expected);
      }),
    );
  });
});
