import type { Transaction } from '@tillwatch/schemas';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRuleEngine, parseRulesConfig } from '../../../index.js';
import { MIN, Scenario } from '../../../../test/helpers/builder.js';
import { runEvents, runSplit } from '../../../../test/helpers/run.js';

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

  it('a leg whose terminal clock runs ahead (event time after its received time, within max_clock_skew) still pairs with a twin arriving within the lateness', () => {
    const run = (skew: number) => {
      const s = new Scenario();
      // B: event time `skew` ahead of its received time (a fast terminal clock; max_clock_skew is 1 h).
      s.sale({ at: 50 * MIN, recvAt: 50 * MIN - skew, card: 'tok', amount: 500, terminal: 'T1', txn: 'tx-b', id: 'ev-b' });
      // A: the retry 10 min later in event time, arriving 24 h 20 min after B's event: its own lag is 23 h 20 min, within the 24 h lateness.
      s.sale({ at: 60 * MIN, recvAt: 24 * 60 * MIN + 20 * MIN, card: 'tok', amount: 500, terminal: 'T2', txn: 'tx-a', id: 'ev-a' });
      const out = runEvents(createRuleEngine(parseRulesConfig({})), s.events);
      return out.alerts.filter((x) => x.rule === 'duplicate_charge').map((x) => x.event_ids);
    };
    expect(run(0)).toEqual([['ev-b', 'ev-a']]);
    expect(run(50 * MIN)).toEqual([['ev-b', 'ev-a']]);
    expect(run(60 * MIN)).toEqual([['ev-b', 'ev-a']]);
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

    it('refunds of a leg beyond the lookback do not count', () => {
      // Past the refund lookback (8 d) the legs are forgotten: a refund then resolves nothing.
      const late = new Scenario();
      pair(late);
      late.refund({ at: 9 * 24 * 60 * MIN, card: 'tok', amount: 1000, of: 'tx-a0' });
      expect(runEvents(createRuleEngine(parseRulesConfig({})), late.events).updates).toEqual([]);
    });

    // Three charges A, B, C of 10.00 (0, 1, 2 min): alerts (A,B) and (B,C), B shared.
    const triple = (s: Scenario): [Transaction, Transaction, Transaction] => {
      const [a, b] = pair(s);
      return [a!, b!, s.sale({ at: 2 * MIN, terminal: 'T1', card: 'tok', amount: 1000, txn: 'tx-c' })];
    };
    const alertOf = (out: ReturnType<typeof runEvents>, legs: string[]) => out.alerts.find((a) => a.rule === 'duplicate_charge' && a.event_ids.join() === legs.join())!.alert_id;

    it('three charges: one void of the shared leg closes one alert, the one it is the retry of; the remaining pair stays open', () => {
      const s = new Scenario();
      const [a, b, c] = triple(s);
      const v = s.void({ at: 3 * MIN, card: 'tok', amount: 1000, of: b.txn_id });
      s.again(v); // a redelivery takes nothing more back
      s.void({ at: 4 * MIN, kind: 'REVERSAL', card: 'tok', amount: 1000, of: b.txn_id }); // nor a second reversal of the same leg
      let out = runEvents(createRuleEngine(parseRulesConfig({})), s.events);
      expect(out.alerts).toHaveLength(2);
      expect(out.updates.map((u) => [u.alert_id, u.resolution, u.resolved_by_event_ids])).toEqual([[alertOf(out, [a.event_id, b.event_id]), 'voided', [v.event_id]]]);
      // A and C are still a duplicate: voiding C then closes (B,C).
      const vc = s.void({ at: 5 * MIN, card: 'tok', amount: 1000, of: c.txn_id });
      out = runEvents(createRuleEngine(parseRulesConfig({})), s.events);
      expect(out.updates.map((u) => [u.alert_id, u.resolution, u.resolved_by_event_ids])).toEqual([
        [alertOf(out, [a.event_id, b.event_id]), 'voided', [v.event_id]],
        [alertOf(out, [b.event_id, c.event_id]), 'voided', [vc.event_id]],
      ]);
    });

    it('three charges: refund money is credited to one alert only (one refund of the shared leg closes one alert; more money back closes the other)', () => {
      const s = new Scenario();
      const [a, b, c] = triple(s);
      const rb = s.refund({ at: 10 * MIN, card: 'tok', amount: 1000, of: b.txn_id });
      let out = runEvents(createRuleEngine(parseRulesConfig({})), s.events);
      expect(out.updates.map((u) => [u.alert_id, u.resolution, u.resolved_by_event_ids, u.details])).toEqual([
        [alertOf(out, [a.event_id, b.event_id]), 'refunded', [rb.event_id], { amount_minor: 1000, refunded_minor: 1000, refunds: 1 }],
      ]);
      // 6.00 more of B: (B,C) counts only B's new money, not yet its amount.
      const rb2 = s.refund({ at: 11 * MIN, card: 'tok', amount: 600, of: b.txn_id });
      expect(runEvents(createRuleEngine(parseRulesConfig({})), s.events).updates).toHaveLength(1);
      // 4.00 of A: 20.00 is back in all, both extra charges. A's 4.00 takes over 4.00 of (A,B) from B's
      // first refund, which moves on to (B,C) with B's 6.00 (the same two alerts close in any order).
      s.refund({ at: 12 * MIN, card: 'tok', amount: 400, of: a.txn_id });
      out = runEvents(createRuleEngine(parseRulesConfig({})), s.events);
      expect(out.updates.map((u) => [u.alert_id, u.resolved_by_event_ids, u.details])).toEqual([
        [alertOf(out, [a.event_id, b.event_id]), [rb.event_id], { amount_minor: 1000, refunded_minor: 1000, refunds: 1 }],
        [alertOf(out, [b.event_id, c.event_id]), [rb.event_id, rb2.event_id].sort(), { amount_minor: 1000, refunded_minor: 1000, refunds: 2 }],
      ]);
      // A refund of C then changes nothing (each alert closes once).
      s.refund({ at: 13 * MIN, card: 'tok', amount: 400, of: c.txn_id });
      expect(runEvents(createRuleEngine(parseRulesConfig({})), s.events).updates).toEqual(out.updates);
      // One 20.00 refund of B pays back both extra charges: it is split, 10.00 to each.
      const s2 = new Scenario();
      const [a2, b2, c2] = triple(s2);
      const big = s2.refund({ at: 10 * MIN, card: 'tok', amount: 2000, of: b2.txn_id });
      const out2 = runEvents(createRuleEngine(parseRulesConfig({})), s2.events);
      expect(out2.updates.map((u) => [u.alert_id, u.resolved_by_event_ids, u.details])).toEqual([
        [alertOf(out2, [a2.event_id, b2.event_id]), [big.event_id], { amount_minor: 1000, refunded_minor: 2000, refunds: 1 }],
        [alertOf(out2, [b2.event_id, c2.event_id]), [big.event_id], { amount_minor: 1000, refunded_minor: 1000, refunds: 1 }],
      ]);
    });

    // Order swap: the same money back in any order closes the same alerts (the result must not depend on
    // the order the money comes back in). Cards of 3 and 4 charges of 10.00 in several layouts.
    const perms = <T,>(xs: T[]): T[][] => (xs.length <= 1 ? [xs] : xs.flatMap((x, i) => perms([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p])));
    type Back = { leg: string; kind: 'REFUND' | 'VOID' | 'REVERSAL'; amount: number; id: string };
    const layouts: Record<string, Array<[string, number]>> = {
      // [txn suffix, event-time minute], in arrival order.
      'three in a row (A,B),(B,C)': [['A', 0], ['B', 2], ['C', 4]],
      'three, C first (A,C),(A,B)': [['C', 10], ['A', 0], ['B', 5]],
      'four in a row (A,B),(B,C),(C,D)': [['A', 0], ['B', 2], ['C', 4], ['D', 6]],
      'four, a star around B': [['A', 0], ['B', 5], ['C', 9], ['D', 5]],
    };
    const runBack = (layout: Array<[string, number]>, back: Back[]) => {
      const s = new Scenario();
      for (const [x, at] of layout) s.sale({ at: at * MIN, terminal: 'T1', card: 'tok', amount: 1000, txn: `tx-${x}`, id: `ev-${x}` });
      back.forEach((r, k) => {
        const i = { at: (30 + k) * MIN, terminal: 'T1', card: 'tok', amount: r.amount, of: `tx-${r.leg}`, txn: `tx-${r.id}`, id: `ev-${r.id}` };
        if (r.kind === 'REFUND') s.refund(i);
        else s.void({ ...i, kind: r.kind });
      });
      const out = runEvents(createRuleEngine(parseRulesConfig({})), s.events);
      const alerts = out.alerts.filter((a) => a.rule === 'duplicate_charge');
      const closed = out.updates.filter((u) => u.rule === 'duplicate_charge').map((u) => alerts.find((a) => a.alert_id === u.alert_id)!.event_ids.join('+'));
      return { alerts: alerts.map((a) => a.event_ids.map((e) => e.slice(3))), closed: closed.sort() };
    };
    /** Whole charges back (full refunds, voids, reversals): the most alerts that can each get one of them on one of its legs. */
    const maxClosable = (alerts: string[][], back: Back[]): number => {
      const owner: number[] = back.map(() => -1);
      const tryAlert = (a: number, seen: Set<number>): boolean => {
        for (let r = 0; r < back.length; r++) {
          if (!alerts[a]!.includes(back[r]!.leg) || seen.has(r)) continue;
          seen.add(r);
          if (owner[r] === -1 || tryAlert(owner[r]!, seen)) return (owner[r] = a), true;
        }
        return false;
      };
      return alerts.filter((_, a) => tryAlert(a, new Set())).length;
    };

    it('order swap: every order of full refunds and voids of the legs of a 3- and a 4-charge card closes the same alerts, as many as the money back can pay', () => {
      const kinds = ['none', 'REFUND', 'VOID'] as const; // a reversal counts as a void (only the resolution's name differs)
      let checked = 0;
      for (const [name, layout] of Object.entries(layouts)) {
        const legs = layout.map(([x]) => x);
        // One choice per leg: nothing back, a full refund, a void or a reversal.
        for (let code = 0; code < kinds.length ** legs.length; code++) {
          const back: Back[] = [];
          legs.forEach((leg, i) => {
            const kind = kinds[Math.floor(code / kinds.length ** i) % kinds.length]!;
            if (kind !== 'none') back.push({ leg, kind, amount: 1000, id: `r${leg}` });
          });
          const runs = perms(back).map((order) => runBack(layout, order));
          const want = maxClosable(runs[0]!.alerts, back);
          for (const [k, r] of runs.entries()) {
            expect(r.closed, `${name}: ${perms(back)[k]!.map((x) => x.kind[0] + x.leg).join(' ')}`).toEqual(runs[0]!.closed);
            expect(r.closed).toHaveLength(want);
          }
          checked += runs.length;
        }
      }
      expect(checked).toBeGreaterThan(1000);
    });

    it('order swap: refunds of 10.00 or 20.00 and voids close the same alerts in every order; partial refunds adding up close as many (property)', () => {
      const leg4 = fc.constantFrom('A', 'B', 'C', 'D');
      const back = fc.array(fc.record({ leg: leg4, amount: fc.constantFrom(250, 500, 750, 1000, 2000), kind: fc.constantFrom<Back['kind']>('REFUND', 'REFUND', 'REFUND', 'VOID', 'REVERSAL') }), { minLength: 1, maxLength: 4 });
      fc.assert(
        fc.property(fc.constantFrom(...Object.keys(layouts)), back, (name, raw) => {
          const layout = layouts[name]!;
          const legs = layout.map(([x]) => x);
          const seenVoid = new Set<string>();
          // At most one void per leg (a second one of the same sale takes nothing back); ids by position.
          const xs = raw.filter((r) => legs.includes(r.leg) && (r.kind === 'REFUND' || !seenVoid.has(r.leg) && !!seenVoid.add(r.leg))).map((r, i) => ({ ...r, amount: r.kind === 'REFUND' ? r.amount : 1000, id: `r${i}` }));
          const runs = perms(xs).map((order) => runBack(layout, order).closed);
          // Whole charges back (refunds of 10.00 or 20.00, voids): the same alerts. With partial refunds
          // an alert closes as soon as its legs hold its amount, so WHICH one can depend on the order
          // (C 2.50, B 7.50 close (B,C); A 2.50, B 7.50 close (A,B)); HOW MANY does not.
          const whole = xs.every((r) => r.amount % 1000 === 0);
          for (const r of runs) {
            if (whole) expect(r).toEqual(runs[0]);
            else expect(r.length).toBe(runs[0]!.length);
          }
        }),
        { numRuns: 200 },
      );
    });

    it('only refunds to the duplicated card and in the sale currency count', () => {
      const s = new Scenario();
      const [, b] = pair(s);
      s.refund({ at: 3 * MIN, card: 'tok_other', amount: 1000, of: b!.txn_id });
      s.refund({ at: 4 * MIN, card: 'tok', amount: 1000, currency: 'JPY', of: b!.txn_id });
      expect(runEvents(createRuleEngine(parseRulesConfig({})), s.events).updates).toEqual([]);
      const ok = s.refund({ at: 5 * MIN, card: 'tok', amount: 1000, of: b!.txn_id });
      expect(runEvents(createRuleEngine(parseRulesConfig({})), s.events).updates.map((u) => [u.resolution, u.resolved_by_event_ids])).toEqual([['refunded', [ok.event_id]]]);
    });

    it('credits and voided legs are restored exactly: split anywhere, the same updates', () => {
      const s = new Scenario();
      const [, b, c] = triple(s);
      // B's refund is credited to (A,B); a partial refund of C then must not close (B,C) with it.
      s.refund({ at: 3 * MIN, card: 'tok', amount: 1000, of: b.txn_id });
      s.refund({ at: 4 * MIN, card: 'tok', amount: 100, of: c.txn_id });
      s.refund({ at: 5 * MIN, card: 'tok', amount: 100, of: c.txn_id });
      s.refund({ at: 6 * MIN, card: 'tok', amount: 800, of: c.txn_id });
      // A second triple: B voided (and redelivered: the redelivery must not close (B,C)), then refunds of B.
      s.sale({ at: 20 * MIN, card: 'tok2', amount: 500, txn: 'tx-2a' });
      s.sale({ at: 21 * MIN, card: 'tok2', amount: 500, txn: 'tx-2b' });
      s.sale({ at: 22 * MIN, card: 'tok2', amount: 500, txn: 'tx-2c' });
      const v2 = s.void({ at: 23 * MIN, card: 'tok2', amount: 500, of: 'tx-2b' });
      s.again(v2);
      s.refund({ at: 24 * MIN, card: 'tok2', amount: 300, of: 'tx-2b' });
      s.refund({ at: 25 * MIN, card: 'tok2', amount: 300, of: 'tx-2b' });
      // A third card, four charges in a row: money back in an order that moves credits and a void
      // between resolved alerts (B's void closes (A,B); A's refund takes (A,B) over, the void moves to (B,C); ...).
      for (const [x, at] of [['A', 40], ['B', 41], ['C', 42], ['D', 43]] as const) s.sale({ at: at * MIN, card: 'tok3', amount: 700, txn: `tx-3${x}` });
      s.void({ at: 44 * MIN, card: 'tok3', amount: 700, of: 'tx-3B' });
      s.refund({ at: 45 * MIN, card: 'tok3', amount: 700, of: 'tx-3C' });
      s.refund({ at: 46 * MIN, card: 'tok3', amount: 350, of: 'tx-3A' });
      s.refund({ at: 47 * MIN, card: 'tok3', amount: 350, of: 'tx-3A' });
      const cfg = parseRulesConfig({});
      const whole = runEvents(createRuleEngine(cfg), s.events).updates;
      expect(whole.length).toBeGreaterThanOrEqual(6);
      for (let cut = 1; cut < s.events.length; cut++) expect(runSplit(cfg, s.events, new Set([cut])).updates, `split at ${cut}`).toEqual(whole);
    });
  });
});
