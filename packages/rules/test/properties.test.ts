// Determinism and restorability, as properties over random streams and random split points.
import type { Heartbeat, Transaction } from '@tillwatch/schemas';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RULE_IDS, createChangelogView, createRuleEngine, type ChangelogValue, type EngineOutput, type RuleEngine, type RulesConfig } from '../src/index.js';
import { CONFIGS as BASE_CONFIGS, inputStream as denseStream } from './helpers/streams.js';
import { feed } from './helpers/run.js';
import { ruleFolderConfigs } from './helpers/rule-configs.js';

/** The shared configs, then those rule folders add (test/property-configs.ts: see helpers/rule-configs.ts). */
const CONFIGS = [...BASE_CONFIGS, ...(await ruleFolderConfigs())];

/** Alerts, actions, alert updates and refund reasons as ordered streams (as the detector produces them to their topics). */
interface Out {
  alerts: string[];
  actions: string[];
  updates: string[];
  reasons: string[];
}
const newOut = (): Out => ({ alerts: [], actions: [], updates: [], reasons: [] });
const record = (out: Out, o: EngineOutput): void => {
  for (const a of o.alerts) out.alerts.push(JSON.stringify(a));
  for (const a of o.actions) out.actions.push(JSON.stringify(a));
  for (const u of o.updates ?? []) out.updates.push(JSON.stringify(u));
  for (const r of o.refundReasons ?? []) out.reasons.push(JSON.stringify(r));
};

function unsplit(config: RulesConfig, events: (Transaction | Heartbeat)[]): Out {
  const e = createRuleEngine(config);
  const out = newOut();
  for (const t of events) record(out, feed(e, t));
  return out;
}

/** JSON round trip, as through Kafka. */
const viaJson = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

const arb = fc.record({
  seed: fc.integer({ min: 1, max: 1_000_000 }),
  config: fc.integer({ min: 0, max: CONFIGS.length - 1 }),
  gap: fc.constantFrom(2_000, 20_000, 120_000),
  splits: fc.uniqueArray(fc.integer({ min: 0, max: 1199 }), { minLength: 1, maxLength: 4 }),
});

describe('engine properties', () => {
  it('the same input gives byte-identical output', () => {
    fc.assert(
      fc.property(arb, ({ seed, config, gap }) => {
        const events = denseStream(seed, 1200, gap);
        expect(unsplit(CONFIGS[config]!, events)).toEqual(unsplit(CONFIGS[config]!, events));
      }),
      { numRuns: 20 },
    );
  }, 60_000);

  it('streams exercise every rule (sanity check of the generator)', () => {
    const rules = new Set<string>();
    for (const seed of [1, 2, 3]) for (const c of CONFIGS) for (const line of unsplit(c, denseStream(seed, 1200, 20_000)).alerts) rules.add(JSON.parse(line).rule as string);
    // Every registered rule (a new rule must be exercised by the streams the split/restore properties use:
    // with its defaults, or under a rules document its folder adds in test/property-configs.ts).
    expect([...RULE_IDS].filter((r) => !rules.has(r)), 'registered rules that never fire on the dense stream under any config').toEqual([]);
    expect([...rules].sort()).toEqual([...RULE_IDS].sort());
    // ... and the split/restore properties below compare alert updates too: the streams must close episodes.
    const updated = new Set<string>();
    for (const seed of [1, 2, 3]) for (const c of CONFIGS) for (const line of unsplit(c, denseStream(seed, 1200, 20_000)).updates) updated.add(`${JSON.parse(line).rule}:${JSON.parse(line).resolution}`);
    // ... and refund reasons: every reason must occur.
    const reasons = new Set<string>();
    for (const seed of [1, 2, 3]) for (const c of CONFIGS) for (const line of unsplit(c, denseStream(seed, 1200, 20_000)).reasons) reasons.add(JSON.parse(line).reason as string);
    expect([...reasons].sort()).toEqual(['duplicate_charge', 'no_sale', 'ordinary', 'policy', 'sync_failure']);
    for (const u of ['sync_lag:episode_ended', 'duplicate_charge:reversed', 'duplicate_charge:voided', 'duplicate_charge:refunded', 'sequence_gap:gap_filled', 'terminal_offline:episode_ended', 'upload_backlog:episode_ended']) expect([...updated]).toContain(u);
  });

  it('split anywhere, the whole entity changelog taken at the split -> JSON -> a new engine: exactly the alerts, actions, alert updates and refund reasons of the unsplit run', () => {
    fc.assert(
      fc.property(arb, ({ seed, config, gap, splits }) => {
        const cfg = CONFIGS[config]!;
        const events = denseStream(seed, 1200, gap);
        const expected = unsplit(cfg, events);
        const cut = new Set(splits);
        const topic = new Map<string, ChangelogValue>();
        const out = newOut();
        let e: RuleEngine = createRuleEngine(cfg);
        let view = createChangelogView(e);
        events.forEach((t, i) => {
          if (cut.has(i)) {
            for (const [k, v] of viaJson(view.takeChanges())) {
              if (v === null) topic.delete(k);
              else topic.set(k, v);
            }
            const clock = e.clock();
            e = createRuleEngine(cfg);
            view = createChangelogView(e);
            e.setClock(clock);
            view.restore(topic);
          }
          record(out, feed(e, t));
        });
        expect(out).toEqual(expected);
      }),
      { numRuns: 40 },
    );
  }, 60_000);

  it('split anywhere, restored from the entity changelog (createChangelogView, as the detector writes it): exactly the same alerts, actions, updates and refund reasons', () => {
    fc.assert(
      fc.property(arb, fc.integer({ min: 1, max: 50 }), ({ seed, config, gap, splits }, every) => {
        const cfg = CONFIGS[config]!;
        const events = denseStream(seed, 1200, gap);
        const expected = unsplit(cfg, events);
        const cut = new Set(splits);
        const topic = new Map<string, ChangelogValue>();
        let clock = 0;
        let e: RuleEngine = createRuleEngine(cfg);
        let view = createChangelogView(e);
        const flush = (): void => {
          for (const [k, v] of viaJson(view.takeChanges())) {
            if (v === null) topic.delete(k);
            else topic.set(k, v);
          }
          clock = e.clock();
        };
        const out = newOut();
        events.forEach((t, i) => {
          if (cut.has(i)) {
            flush();
            e = createRuleEngine(cfg);
            view = createChangelogView(e);
            e.setClock(clock);
            view.restore(topic);
          }
          record(out, feed(e, t));
          if (i % every === 0) flush();
        });
        expect(out).toEqual(expected);
      }),
      { numRuns: 25 },
    );
  }, 60_000);

  it('advancing the clock more often (up to the next arrival) changes nothing', () => {
    fc.assert(
      fc.property(arb, fc.integer({ min: 1, max: 7 }), ({ seed, config, gap }, every) => {
        const cfg = CONFIGS[config]!;
        const events = denseStream(seed, 1200, gap);
        const expected = unsplit(cfg, events);
        const e = createRuleEngine(cfg);
        const out = newOut();
        events.forEach((t, i) => {
          if (i % every === 0) {
            record(out, e.advanceClock(e.clock()));
            record(out, e.advanceClock(Math.floor((e.clock() + t.received_time) / 2)));
            record(out, e.advanceClock(t.received_time));
          }
          record(out, feed(e, t));
        });
        expect(out).toEqual(expected);
      }),
      { numRuns: 30 },
    );
  }, 60_000);

  it('state stays bounded: with short horizons everything expires once the clock moves on', () => {
    const cfg = CONFIGS[1]!;
    const e = createRuleEngine(cfg);
    const events = denseStream(5, 3000, 20_000);
    let peakSales = 0;
    for (const t of events) {
      feed(e, t);
      peakSales = Math.max(peakSales, e.stats().sales);
    }
    // 3000 events over ~17 h, a 2 h refund lookback: far fewer sales held than seen.
    expect(peakSales).toBeLessThan(1000);
    const view = createChangelogView(e);
    e.advanceClock(e.clock() + 4 * 3600_000);
    e.advanceClock(e.clock() + 2 * 3600_000);
    const s = e.stats();
    expect(s).toMatchObject({ merchants: 0, terminals: 0, cards: 0, sales: 0, duplicateLegs: 0, pendingGaps: 0, samples: 0 });
    // Every entity that had state is now a tombstone, for both merchants.
    const dirty = view.takeChanges();
    expect(dirty.length).toBeGreaterThan(0);
    expect(dirty.every(([, v]) => v === null)).toBe(true);
    expect([...new Set(dirty.map(([k]) => k.split('\u001f')[0]))].sort()).toEqual(['M0000', 'M0001']);
  });
});
