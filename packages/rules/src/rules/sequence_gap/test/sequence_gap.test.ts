import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRuleEngine, parseRulesConfig } from '../../../index.js';
import { HOUR, MIN, SEC, Scenario, T0 } from '../../../../test/helpers/builder.js';
import { collect, runEvents } from '../../../../test/helpers/run.js';

const config = parseRulesConfig({ rules: { duplicate_charge: { enabled: false }, abnormal_amount: { enabled: false }, sync_lag: { enabled: false } } });

describe('sequence_gap', () => {
  it('config: default timeout 30m; terminal_idle_ttl must outlive it', () => {
    expect(parseRulesConfig({}).rules.sequence_gap).toEqual({ enabled: true, severity: 'medium', mode: 'active', timeout: 30 * MIN });
    expect(() => parseRulesConfig({ rules: { sequence_gap: { timeout: '31d' } } })).toThrow(/^engine\.terminal_idle_ttl: must be longer/);
  });

  it('a missing seq fires at due time with its neighbours and range; a partial fill shrinks it', () => {
    const s = new Scenario();
    const low = s.sale({ at: 0, seq: 1, card: 'a' });
    const high = s.sale({ at: MIN, seq: 5, card: 'b' });
    s.sale({ at: 2 * MIN, seq: 3, card: 'c' });
    const e = createRuleEngine(config);
    const out = runEvents(e, s.events);
    expect(out.alerts).toEqual([]);
    collect(out, e.advanceClock(T0 + HOUR));
    expect(out.alerts.map((a) => [a.event_ids, a.detected_at, a.details.missing_from, a.details.missing_to, a.details.missing_count])).toEqual([[[low.event_id, high.event_id], high.received_time + 30 * MIN, 2, 4, 2]]);
    expect(out.alerts[0]!.card_token).toBeNull();
  });

  it('seqs that all arrive within the timeout never fire, whatever their order (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 2, maxLength: 50 }), (jitter) => {
        // seq i arrives at about minute i + jitter (<= 5 min late, timeout 30 min)
        const order = jitter.map((j, i) => ({ seq: i + 1, at: i + j })).sort((a, b) => a.at - b.at || a.seq - b.seq);
        const s = new Scenario();
        order.forEach((o, k) => s.sale({ at: k * MIN, seq: o.seq, card: `c${k}` }));
        const e = createRuleEngine(config);
        const out = runEvents(e, s.events);
        collect(out, e.advanceClock(T0 + 10 * HOUR));
        expect(out.alerts).toEqual([]);
      }),
    );
  });

  it('every seq that never arrives fires exactly once (property)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 2, max: 39 }), { maxLength: 10 }), (dropped) => {
        const gone = new Set(dropped);
        const s = new Scenario();
        for (let q = 1; q <= 40; q++) if (!gone.has(q)) s.sale({ at: q * MIN, seq: q, card: `c${q}` });
        const e = createRuleEngine(config);
        const out = runEvents(e, s.events);
        collect(out, e.advanceClock(T0 + 10 * HOUR));
        const missing = out.alerts.flatMap((a) => Array.from({ length: a.details.missing_to! - a.details.missing_from! + 1 }, (_, i) => a.details.missing_from! + i));
        expect(missing.sort((a, b) => a - b)).toEqual([...gone].sort((a, b) => a - b));
      }),
    );
  });

  it('gap_filled: a fired gap is waited for terminal_idle_ttl after its alert, then forgotten', () => {
    const cfg = parseRulesConfig({ engine: { terminal_idle_ttl: '2h' }, rules: { duplicate_charge: { enabled: false }, abnormal_amount: { enabled: false }, sync_lag: { enabled: false } } });
    const run = (missingAt: number) => {
      const s = new Scenario();
      s.sale({ at: 0, card: 'tok_1', seq: 1 });
      s.sale({ at: MIN, card: 'tok_3', seq: 3 });
      for (let k = 1; k <= 8; k++) s.sale({ at: k * 30 * MIN, card: `tok_k${k}`, seq: 3 + k });
      const two = s.sale({ at: 30 * SEC, recvAt: missingAt, card: 'tok_2', seq: 2 });
      const arrival = [...s.events].sort((a, b) => a.received_time - b.received_time);
      return { two, out: runEvents(createRuleEngine(cfg), arrival) };
    };
    // The alert fires at 31m 1.5s; the missing seq 2 arrives 1h later, then 3h later (> 2h after the alert).
    const inTime = run(HOUR + 31 * MIN);
    expect(inTime.out.alerts).toHaveLength(1);
    expect(inTime.out.updates.map((u) => [u.alert_id, u.resolution, u.resolved_by_event_ids])).toEqual([[inTime.out.alerts[0]!.alert_id, 'gap_filled', [inTime.two.event_id]]]);
    const tooLate = run(3 * HOUR + 32 * MIN);
    expect(tooLate.out.alerts).toHaveLength(1);
    expect(tooLate.out.updates).toEqual([]);
  });
});
