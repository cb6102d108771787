// The engine (typed rows, hash indexes, expiry wheels, bounded median) against the reference model
// (objects in Maps, naive median): identical alerts and actions on random dense streams, for the
// rules the reference implements (REFERENCE_RULES). Other registered rules stay enabled in the
// engine and their output is left out: a rule added without a reference twin needs no edit here,
// and it must not change what the covered rules raise.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RULE_IDS, createRuleEngine, type EngineOutput } from '../src/index.js';
import { CONFIGS, denseStream } from './helpers/streams.js';
import { REFERENCE_RULES, createReferenceEngine } from './reference/engine.js';

const covered = new Set<string>(REFERENCE_RULES);
const push = (out: string[], o: EngineOutput): void => {
  for (const a of o.alerts) if (covered.has(a.rule)) out.push(JSON.stringify(a));
  for (const a of o.actions) if (covered.has(a.rule)) out.push(JSON.stringify(a));
};

describe('engine vs reference model', () => {
  it('the reference rules are registered rules', () => {
    expect(RULE_IDS).toEqual(expect.arrayContaining([...REFERENCE_RULES]));
  });

  it('produces exactly the reference alerts and actions', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), fc.integer({ min: 0, max: CONFIGS.length - 1 }), fc.constantFrom(2_000, 20_000, 120_000), (seed, c, gap) => {
        const events = denseStream(seed, 2000, gap);
        const a = createRuleEngine(CONFIGS[c]!);
        const b = createReferenceEngine(CONFIGS[c]!);
        const oa: string[] = [];
        const ob: string[] = [];
        events.forEach((t, i) => {
          push(oa, a.onTransaction(t));
          push(ob, b.onTransaction(t));
          if (i % 400 === 0) {
            push(oa, a.advanceClock(t.received_time + 600_000));
            push(ob, b.advanceClock(t.received_time + 600_000));
          }
        });
        expect(oa.length).toBeGreaterThan(0);
        expect(oa).toEqual(ob);
      }),
      { numRuns: 30 },
    );
  }, 60_000);
});
