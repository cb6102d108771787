import type { Transaction } from '@tillwatch/schemas';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createChangelogView, createRuleEngine, parseRulesConfig } from '../../../index.js';
import { MIN, Scenario } from '../../../../test/helpers/builder.js';
import { runEvents } from '../../../../test/helpers/run.js';

describe('refund_velocity', () => {
  it('config: count 5 within 60m by default, medium, NOTIFY_MERCHANT; bad values refused with their path', () => {
    const c = parseRulesConfig({});
    expect(c.rules.refund_velocity).toEqual({ enabled: true, severity: 'medium', mode: 'active', count: 5, window: 60 * MIN });
    expect(c.policy.refund_velocity).toEqual([{ kind: 'NOTIFY_MERCHANT', expires_after: null }]);
    expect(() => parseRulesConfig({ rules: { refund_velocity: { count: 1 } } })).toThrow(/rules\.refund_velocity\.count/);
    expect(() => parseRulesConfig({ rules: { refund_velocity: { count: 2.5 } } })).toThrow(/rules\.refund_velocity\.count/);
    expect(() => parseRulesConfig({ rules: { refund_velocity: { window: 0 } } })).toThrow(/rules\.refund_velocity\.window/);
    // Its alerts carry no card: FREEZE_CARD is refused.
    expect(() => parseRulesConfig({ policy: { refund_velocity: ['FREEZE_CARD'] } })).toThrow(/policy\.refund_velocity/);
    expect(parseRulesConfig({ overrides: { terminals: { T1: { refund_velocity: { count: 10 } } } } }).overrides.terminals.T1!.refund_velocity).toEqual({ count: 10 });
  });

  it('counts refunds without a sale and of unknown sales too, once per refund (a redelivery is not a refund)', () => {
    const s = new Scenario();
    const rs: Transaction[] = [];
    for (let i = 0; i < 4; i++) rs.push(s.refund({ at: i * MIN, card: `c${i}`, amount: 100, of: i % 2 === 0 ? null : `tx-x${i}` }));
    s.again(rs[3]!);
    s.again(rs[2]!); // no original_txn_id: the ledger cannot tell a redelivery, the rule can
    const cfg = parseRulesConfig({ rules: { refund_without_sale: { enabled: false } } });
    expect(runEvents(createRuleEngine(cfg), s.events).alerts).toEqual([]);
    const fifth = s.refund({ at: 5 * MIN, card: 'c5', amount: 100, of: null });
    const out = runEvents(createRuleEngine(cfg), s.events);
    expect(out.alerts.map((a) => [a.rule, a.event_ids, a.card_token])).toEqual([['refund_velocity', [...rs, fifth].map((r) => r.event_id), null]]);
    expect(out.alerts[0]!.summary).toBe(`Terminal T1 made 5 approved refunds within 1h; the last, ${fifth.txn_id}, was 1.00 EUR.`);
    expect(out.actions.map((a) => [a.kind, a.target_type, a.target_id])).toEqual([['NOTIFY_MERCHANT', 'MERCHANT', 'M1']]);
  });

  it('does not depend on arrival order within the allowed lateness: a refund arriving after a much later one still sees its window', () => {
    // Refunds at 0, 10, 20, 30, 35 and 100 min (all received within the allowed lateness, 24h): the one
    // at 35 min makes 5 in 60 min whether it arrives before or after the one at 100 min.
    const run = (order: number[]) => {
      const s = new Scenario();
      order.forEach((m, i) => s.refund({ at: m * MIN, recvAt: 3 * 60 * MIN + i * 1000, card: `c${i}`, amount: 100, of: null, id: `rf-${m}` }));
      const cfg = parseRulesConfig({ rules: { refund_without_sale: { enabled: false } } });
      return runEvents(createRuleEngine(cfg), s.events).alerts.filter((a) => a.rule === 'refund_velocity').map((a) => a.event_ids);
    };
    const expected = [['rf-0', 'rf-10', 'rf-20', 'rf-30', 'rf-35']];
    expect(run([0, 10, 20, 30, 35, 100])).toEqual(expected);
    expect(run([0, 10, 20, 30, 100, 35])).toEqual(expected);
    // (A refund is judged when it arrives, by its own trailing window: in reverse order no refund has 4
    // earlier ones before it, so none fires; that is the trailing-window reading, not eviction.)
    expect(run([100, 35, 30, 20, 10, 0])).toEqual([]);
  });

  it('state is bounded by window + allowed lateness behind the latest refund (changelog)', () => {
    const cfg = parseRulesConfig({ engine: { allowed_lateness: '30m' }, rules: { refund_without_sale: { enabled: false }, refund_velocity: { count: 50, window: '10m' } } });
    const e = createRuleEngine(cfg);
    const view = createChangelogView(e);
    const s = new Scenario();
    for (let m = 0; m <= 120; m += 5) s.refund({ at: m * MIN, card: 'c', amount: 100, of: null });
    runEvents(e, s.events);
    const term = view.takeChanges().find(([k]) => k.includes('T1') && !k.includes('tx-'));
    const v = (term?.[1] as { refund_velocity?: { ets: number[] } } | undefined)?.refund_velocity;
    // Latest at 120 min: kept from 120 - 10 - 30 = 80 min on (80, 85, ..., 120).
    expect(v?.ets.map((et) => (et - s.events[0]!.event_time) / MIN)).toEqual([80, 85, 90, 95, 100, 105, 110, 115, 120]);
  });

  // The naive model: refunds in arrival order; each one fires when, counting every refund seen so far
  // at its terminal with an event time in [et - window, et], there are >= count, and et >= the silence
  // end. All refunds arrive within the allowed lateness (24h), so nothing seen may be forgotten.
  it('matches the naive model over random refund times, terminals and arrival orders (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.integer({ min: 0, max: 300 }), terminal: fc.constantFrom('T1', 'T2') }), { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 2, max: 5 }),
        fc.integer({ min: 5, max: 90 }),
        (refunds, count, windowMin) => {
          const window = windowMin * MIN;
          const s = new Scenario();
          const events = refunds.map((r, i) => s.refund({ at: r.at * MIN, recvAt: 400 * MIN + i * 1000, terminal: r.terminal, card: 'a', amount: 10, of: null, id: `ev-${String(i).padStart(3, '0')}` }));
          const expected: string[][] = [];
          const silent = new Map<string, number>();
          events.forEach((e, i) => {
            const seen = events.slice(0, i + 1).filter((x) => x.terminal_id === e.terminal_id);
            if (e.event_time < (silent.get(e.terminal_id) ?? -Infinity)) return;
            const inWin = seen.filter((x) => x.event_time >= e.event_time - window && x.event_time <= e.event_time);
            if (inWin.length < count) return;
            silent.set(e.terminal_id, e.event_time + window);
            expected.push(inWin.sort((a, b) => a.event_time - b.event_time || (a.event_id < b.event_id ? -1 : 1)).map((x) => x.event_id));
          });
          const cfg = parseRulesConfig({ rules: { refund_without_sale: { enabled: false }, refund_velocity: { count, window } } });
          const got = runEvents(createRuleEngine(cfg), s.events).alerts.filter((a) => a.rule === 'refund_velocity').map((a) => a.event_ids);
          expect(got).toEqual(expected);
        },
      ),
    );
  });
});
