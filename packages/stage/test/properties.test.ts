// The stage's ordering guarantee: any interleaving of the partitions' records, in any batching, and
// split anywhere through the changelog (JSON round trip, restored into a new core), gives the same
// alerts, updates, actions, decisions and memberships as feeding the partitions one after another.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defaultRulesConfig, type RulesConfig } from '@tillwatch/rules';
import type { Action } from '@tillwatch/schemas';
import { createStageCore, type StageOutput } from '../src/core.js';
import { createActivityTracker } from '../src/derive.js';
import type { StageRecord } from '../src/types.js';

const MIN = 60_000;
const BASE = Date.UTC(2025, 0, 6, 9);

function config(): RulesConfig {
  const c = defaultRulesConfig();
  // A short active_within: the incident's active_terminals (in its details) follows the exact activity
  // (first records and hour closes), so the ordering of those records is checked too.
  c.stage.sync_incident = { ...c.stage.sync_incident, min_terminals: 3, active_within: 30 * MIN, window: 15 * MIN, quiet: 10 * MIN };
  c.stage.governor = { ...c.stage.governor, max_freezes: 3, max_freezes_per_merchant: 2, freeze_window: 30 * MIN };
  return c;
}

type Step = { dt: number; what: number; terminal: number; wm: boolean };

/** One partition's records, as a detector partition publishes them: times never below its last watermark. */
function partitionRecords(p: number, steps: Step[]): StageRecord[] {
  const out: StageRecord[] = [];
  const tracker = createActivityTracker();
  let published = -1;
  const open = new Map<string, string>();
  let t = BASE;
  let n = 0;
  for (const s of steps) {
    t += s.dt;
    const terminal = `p${p}-T${s.terminal}`;
    const merchant = `p${p}-M${s.terminal % 2}`;
    const id = `p${p}-${++n}`;
    const action = (kind: Action['kind'], rule: string): Action => ({
      action_id: `act-${id}`,
      kind,
      target_type: kind === 'NOTIFY_MERCHANT' ? 'MERCHANT' : 'TERMINAL',
      target_id: kind === 'NOTIFY_MERCHANT' ? merchant : terminal,
      merchant_id: merchant,
      terminal_id: terminal,
      alert_id: `al-${id}`,
      rule,
      reason: 'r',
      issued_at: t,
      expires_at: null,
    });
    switch (s.what) {
      case 0:
      case 1: {
        const alert = open.get(terminal);
        if (alert === undefined) {
          const rule = s.what === 0 ? 'sync_lag' : 'terminal_offline';
          open.set(terminal, `al-${id}`);
          out.push({ type: 'start', partition: p, time: t, rule, alert_id: `al-${id}`, terminal_id: terminal, merchant_id: merchant, event_id: s.what === 0 ? `ev-${id}` : null });
          out.push({ type: 'action', partition: p, time: t, action: { ...action('NOTIFY_MERCHANT', rule), alert_id: `al-${id}` } });
        } else {
          open.delete(terminal);
          out.push({ type: 'end', partition: p, time: t, rule: 'sync_lag', alert_id: alert, terminal_id: terminal, merchant_id: merchant });
        }
        break;
      }
      case 2:
        out.push({ type: 'action', partition: p, time: t, action: action('FREEZE_TERMINAL', 'refund_without_sale') });
        break;
      case 3:
        // A sequence_gap alert and its notification: of a member terminal, it joins the open incident
        // (`during`); of another, it is linked if the terminal enters within `window` (`before`).
        out.push({ type: 'alert', partition: p, time: t, rule: 'sequence_gap', alert_id: `al-${id}`, terminal_id: terminal, merchant_id: merchant });
        out.push({ type: 'action', partition: p, time: t, action: action('NOTIFY_MERCHANT', 'sequence_gap') });
        break;
      default: {
        // Activity as the detector publishes it: a terminal's first record of an hour, and (at the
        // watermarks below) each hour's close with its last record.
        const first = tracker.seen(p, terminal, merchant, t);
        if (first !== null) out.push(first);
      }
    }
    if (s.wm) {
      tracker.closes(p, t, published, out);
      out.push({ type: 'watermark', partition: p, time: t });
      published = t;
    }
  }
  tracker.closes(p, t, published, out);
  // Half the partitions end their input (replay's end marks): records at their last time apply before the flush.
  out.push({ type: 'watermark', partition: p, time: t, ...(steps.length % 2 === 1 ? { end: true } : {}) });
  return out;
}

// Now and then a long pause (beyond active_within + quiet): incidents close, also while a member is
// still inside an episode but no longer active.
const stepArb = fc.record({ dt: fc.oneof({ arbitrary: fc.constant(0), weight: 4 }, { arbitrary: fc.integer({ min: 0, max: 4 * MIN }), weight: 4 }, { arbitrary: fc.integer({ min: 20 * MIN, max: 60 * MIN }), weight: 1 }), what: fc.integer({ min: 0, max: 5 }), terminal: fc.integer({ min: 0, max: 5 }), wm: fc.boolean() });

function concat(outs: StageOutput[]): StageOutput {
  return { alerts: outs.flatMap((o) => o.alerts), updates: outs.flatMap((o) => o.updates), actions: outs.flatMap((o) => o.actions), decisions: outs.flatMap((o) => o.decisions), memberships: outs.flatMap((o) => o.memberships) };
}

function reference(partitions: StageRecord[][]): StageOutput {
  const core = createStageCore({ partitions: partitions.length, config: config() });
  const outs = partitions.map((recs) => core.apply(recs));
  outs.push(core.flush());
  return concat(outs);
}

describe('stage ordering (watermarks)', () => {
  it('any interleaving, batching and changelog split of the partitions gives the same output', () => {
    let incidents = 0;
    let downgrades = 0;
    let during = 0;
    let before = 0;
    let closedInactive = 0;
    fc.assert(
      fc.property(
        fc.array(fc.array(stepArb, { minLength: 1, maxLength: 60 }), { minLength: 1, maxLength: 4 }),
        fc.infiniteStream(fc.nat()),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 1000 }),
        (steps, picks, batch, splitAt) => {
          const parts = steps.map((s, p) => partitionRecords(p, s));
          const expected = reference(parts);
          incidents += expected.alerts.filter((a) => a.rule === 'sync_incident').length;
          downgrades += expected.decisions.filter((d) => d.decision === 'downgraded').length;
          during += expected.memberships.filter((m) => m.role === 'during').length;
          before += expected.memberships.filter((m) => m.role === 'before').length;
          closedInactive += expected.updates.filter((u) => u.rule === 'sync_incident' && u.details.still_open! > 0).length;
          // A random merge that keeps each partition's own order.
          const cursor = parts.map(() => 0);
          const merged: StageRecord[] = [];
          const it = picks[Symbol.iterator]();
          for (;;) {
            const live = parts.map((_, p) => p).filter((p) => cursor[p]! < parts[p]!.length);
            if (live.length === 0) break;
            const p = live[(it.next().value as number) % live.length]!;
            merged.push(parts[p]![cursor[p]!++]!);
          }
          let core = createStageCore({ partitions: parts.length, config: config() });
          const state = new Map<string, unknown>();
          const outs: StageOutput[] = [];
          const split = splitAt % (merged.length + 1);
          for (let i = 0; i < merged.length; i += batch) {
            const chunk = merged.slice(i, Math.min(i + batch, merged.length));
            outs.push(core.apply(chunk));
            for (const [k, v] of core.takeChanges()) {
              if (v === null) state.delete(k);
              else state.set(k, JSON.parse(JSON.stringify(v)));
            }
            if (i <= split && split < i + batch) {
              // Crash and restore from the changelog written so far.
              core = createStageCore({ partitions: parts.length, config: config() });
              core.restore(state);
            }
          }
          outs.push(core.flush());
          expect(concat(outs)).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
    // Not vacuous: the generated streams open incidents and trip the freeze circuit.
    expect(incidents).toBeGreaterThan(20);
    expect(downgrades).toBeGreaterThan(20);
    expect(during).toBeGreaterThan(20);
    expect(before).toBeGreaterThan(20);
    // Incidents closed while members were still inside an episode, no longer active (their last activity
    // older than active_within): the close depends on the members' activity, restored from the changelog.
    expect(closedInactive).toBeGreaterThan(20);
  });
});
