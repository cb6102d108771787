// engine.prefetch is a hint only: with it, with hints that do not match what comes next (skipped,
// out of order, repeated, stale), the output is byte-identical to the same input without it.
import type { Heartbeat, Transaction } from '@tillwatch/schemas';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRuleEngine, type EngineOutput, type RulesConfig } from '../src/index.js';
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
});
