// engine.prefetch is a hint only: with it, with hints that do not match what comes next (skipped,
// out of order, repeated, stale), the output is byte-identical to the same input without it.
import type { Heartbeat, Transaction } from '@tillwatch/schemas';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRuleEngine, parseRulesConfig, type EngineOutput, type RulesConfig } from '../src/index.js';
import { MIN, SEC, Scenario } from './helpers/builder.js';
import { feed } from './helpers/run.js';
import { CONFIGS, inputStream } from './helpers/streams.js';

const run = (config: RulesConfig, events: readonly (Transaction | Heartbeat)[], hint: (e: ReturnType<typeof createRuleEngine>, i: number) => void): string[] => {
  const e = createRuleEngine(config);
  const out: string[] = [];
  const record = (o: EngineOutput): void => {
    out.push(JSON.stringify([o.alerts, o.actions, o.shadowAlerts, o.updates ?? [], o.refundReasons ?? []]));
  };
  for (let i = 0; i < events.length; i++) {
    hint(e, i);
    record(feed(e, events[i]!));
  }
  return out;
};

describe('engine.prefetch', () => {
  it('never changes the output, whatever it is told', () => {
    fc.assert(
      fc.property(
        fc.record({
          seed: fc.integer({ min: 1, max: 1_000_000 }),
          config: fc.integer({ min: 0, max: CONFIGS.length - 1 }),
          every: fc.integer({ min: 1, max: 24 }),
          // 0: the next `every` inputs (the intended use); 1: a window ahead (nothing matches);
          // 2: a window behind (already processed); 3: the next window, then a second call over part of it.
          mode: fc.integer({ min: 0, max: 3 }),
        }),
        ({ seed, config, every, mode }) => {
          const events = inputStream(seed, 800);
          const cfg = CONFIGS[config]!;
          const plain = run(cfg, events, () => {});
          const hinted = run(cfg, events, (e, i) => {
            if (i % every !== 0) return;
            if (mode === 0) e.prefetch(events, i, i + every);
            else if (mode === 1) e.prefetch(events, i + every, i + 2 * every);
            else if (mode === 2) e.prefetch(events, i - every, i);
            else {
              e.prefetch(events, i, i + every);
              e.prefetch(events, i + 1, i + 1 + (every >> 1));
            }
          });
          expect(hinted).toEqual(plain);
        },
      ),
      { numRuns: 25 },
    );
  }, 60_000);

  it('hints given before a rules change are dropped: a new rule instance (a shadow duplicate_charge) sees none', () => {
    const sc = new Scenario();
    sc.sale({ at: 0, terminal: 'T1', seq: 1, card: 'tok_dup', amount: 4250 });
    sc.sale({ at: 10 * SEC, terminal: 'T2', seq: 1, card: 'tok_other', amount: 100 });
    sc.sale({ at: 20 * SEC, terminal: 'T2', seq: 2, card: 'tok_dup', amount: 4250 });
    const events = sc.events;
    const after = parseRulesConfig({ version: 2, shadow: { duplicate_charge: {} } });
    const runSwitch = (hint: boolean): string[] => {
      const e = createRuleEngine(parseRulesConfig({}));
      return events.map((t, i) => {
        // The hint covers the second leg; the switch comes after the hint, before that leg arrives.
        if (i === 1) {
          if (hint) e.prefetch(events, 1, events.length);
          e.setRules(after);
        }
        const o = feed(e, t);
        return JSON.stringify([o.alerts.map((a) => a.rule), o.shadowAlerts.map((a) => a.rule)]);
      });
    };
    const plain = runSwitch(false);
    expect(plain[2]).toBe('[["duplicate_charge"],["duplicate_charge"]]');
    expect(runSwitch(true)).toEqual(plain);
  });

  it('a terminal replaced inside a hinted window is looked up again (not the one the hint found)', () => {
    // T1 goes idle past the TTL: its second event replaces it; the third was hinted with the old one.
    const cfg = parseRulesConfig({ engine: { terminal_idle_ttl: '1m' }, rules: { sequence_gap: { timeout: '30s' } } });
    const s = new Scenario();
    s.sale({ at: 0, terminal: 'T1', seq: 1 });
    s.sale({ at: 2 * MIN, terminal: 'T1', seq: 10 });
    s.sale({ at: 2 * MIN + SEC, terminal: 'T1', seq: 11 });
    const events = s.events;
    // Output and end state (the entity changelog: the new T1 has seen two sales, not one).
    const state = (hint: boolean): string => {
      const e = createRuleEngine(cfg);
      e.takeChangedEntities(); // starts tracking
      const out = events.map((t, i) => {
        if (hint && i === 1) e.prefetch(events, 1, events.length); // T1 exists (made by the first event)
        return feed(e, t);
      });
      return JSON.stringify([out, e.takeChangedEntities()]);
    };
    expect(state(true)).toEqual(state(false));
    expect(state(false)).toContain('"sales_seen":2');
  });
});
