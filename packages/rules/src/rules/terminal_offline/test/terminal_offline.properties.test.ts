// Properties of terminal_offline over random streams (fast-check): any cadence shorter than `silence`
// is quiet; one alert per silence, closed by one update when the terminal comes back (against a
// direct model of the README); the same alerts and updates whatever the restore points and clock ticks.
import type { Heartbeat, Transaction } from '@tillwatch/schemas';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RULE_IDS, createRuleEngine, parseRulesConfig, type RulesConfig } from '../../../index.js';
import { alertId } from '../../../ids.js';
import { MIN, SEC, Scenario, T0 } from '../../../../test/helpers/builder.js';
import { collect, runEvents, runSplit } from '../../../../test/helpers/run.js';

const only = (silence: number): RulesConfig =>
  parseRulesConfig({ rules: { ...Object.fromEntries(RULE_IDS.filter((r) => r !== 'terminal_offline').map((r) => [r, { enabled: false }])), terminal_offline: { silence } } });

type Event = Transaction | Heartbeat;
/** A sign of life: its received time (ms after T0), its evidence id, whether a heartbeat. */
interface Sign {
  recv: number;
  id: string;
  hb: boolean;
}

/** A heartbeat or a sale of `terminal` received at `recv` (ms after T0). */
function sign(s: Scenario, terminal: string, recv: number, hb: boolean, queue = 0): Sign {
  const e = hb ? s.heartbeat({ at: recv - 500, terminal, queue }) : s.sale({ at: recv - 1500, recvAt: recv, terminal, card: `c${s.events.length}` });
  return { recv, id: e.event_id, hb };
}

/** In arrival order (stable: equal received times keep their order). */
const arrival = (s: Scenario): Event[] => [...s.events].sort((a, b) => a.received_time - b.received_time);

/** A step of one terminal: the gap since its previous sign of life, and what it sends. */
const step = (silence: number) =>
  fc.record({
    gap: fc.oneof(
      fc.integer({ min: 1, max: silence - 1 }),
      fc.constantFrom(silence - 1, silence, silence + 1), // the boundary: exactly `silence` is a silence
      fc.integer({ min: silence, max: 3 * silence }),
    ),
    hb: fc.boolean(),
    queue: fc.nat({ max: 9 }),
  });

/** T1: a few transactions before its first heartbeat (not watched yet), then signs of life with random gaps. */
const offlineStream = fc.integer({ min: MIN, max: 15 * MIN }).chain((silence) =>
  fc.record({
    silence: fc.constant(silence),
    before: fc.array(fc.integer({ min: 1, max: 3 * silence }), { maxLength: 3 }),
    steps: fc.array(step(silence), { minLength: 1, maxLength: 30 }),
    /** T2 (another terminal of the merchant) beats at this cadence meanwhile: the clock moves between T1's events. */
    other: fc.integer({ min: 20 * SEC, max: silence - 1 }),
    /** After the input, the clock (live: the detector's tick) moves this far past T1's last sign of life. */
    tail: fc.oneof(fc.integer({ min: 0, max: 2 * silence }), fc.constantFrom(silence - 1, silence)),
  }),
);

function buildOffline({ before, steps, other }: { before: number[]; steps: { gap: number; hb: boolean; queue: number }[]; other: number }) {
  const s = new Scenario();
  let recv = MIN;
  for (const gap of before) {
    sign(s, 'T1', recv, false);
    recv += gap;
  }
  const signs = [sign(s, 'T1', recv, true)]; // the watch starts here
  for (const st of steps) {
    recv += st.gap;
    signs.push(sign(s, 'T1', recv, st.hb, st.queue));
  }
  for (let at = 0; at <= recv; at += other) sign(s, 'T2', at, true);
  return { events: arrival(s), signs, last: recv };
}

describe('terminal_offline properties', () => {
  it('any cadence shorter than silence, heartbeats and transactions mixed, several terminals: no alert while they beat; once they stop, one alert each, at last sign of life + silence', () => {
    const arb = fc.integer({ min: MIN, max: 15 * MIN }).chain((silence) =>
      fc.record({
        silence: fc.constant(silence),
        terminals: fc.array(
          fc.record({
            start: fc.integer({ min: 0, max: 30 * MIN }),
            steps: fc.array(fc.record({ gap: fc.oneof(fc.integer({ min: 1, max: silence - 1 }), fc.constant(silence - 1)), hb: fc.boolean() }), { minLength: 1, maxLength: 40 }),
          }),
          { minLength: 1, maxLength: 3 },
        ),
      }),
    );
    fc.assert(
      fc.property(arb, ({ silence, terminals }) => {
        const s = new Scenario();
        const lastOf = terminals.map(({ start, steps }, n) => {
          let recv = start;
          let last = sign(s, `T${n}`, recv, true);
          for (const st of steps) last = sign(s, `T${n}`, (recv += st.gap), st.hb);
          return last;
        });
        const e = createRuleEngine(only(silence));
        const out = runEvents(e, arrival(s));
        // Nothing before the first terminal stops (terminals stop at different times: the others move the clock on).
        const firstStop = Math.min(...lastOf.map((l) => l.recv)) + silence;
        expect(out.alerts.filter((a) => a.detected_at < T0 + firstStop)).toEqual([]);
        collect(out, e.advanceClock(T0 + Math.max(...lastOf.map((l) => l.recv)) + 5 * silence));
        // Every alert is a terminal's final silence: exactly one each.
        const got = out.alerts.map((a) => [a.terminal_id, a.event_ids, a.window_start - T0, a.detected_at - T0]).sort((a, b) => String(a[0]).localeCompare(String(b[0])));
        expect(got).toEqual(lastOf.map((l, n) => [`T${n}`, [l.id], l.recv, l.recv + silence]));
        expect(out.updates).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });

  it('one alert per silence >= `silence` (none before the first heartbeat), each closed by one update naming the sign of life that ended it (property: against a direct model)', () => {
    fc.assert(
      fc.property(offlineStream, ({ silence, before, steps, other, tail }) => {
        const { events, signs, last } = buildOffline({ before, steps, other });
        // The model (README): a silence is a gap >= silence between consecutive signs of life from the first heartbeat on.
        const alerts: [string[], number, number][] = [];
        const updates: [string, string[], number, number, number][] = [];
        for (let i = 1; i < signs.length; i++) {
          const [a, b] = [signs[i - 1]!, signs[i]!];
          if (b.recv - a.recv < silence) continue;
          alerts.push([[a.id], a.recv, a.recv + silence]);
          updates.push([alertId('terminal_offline', 1, [a.id]), [b.id], b.recv, b.recv - a.recv, b.hb ? 1 : 0]);
        }
        if (tail >= silence) alerts.push([[signs.at(-1)!.id], last, last + silence]); // still open at the end: no update

        const e = createRuleEngine(only(silence));
        const out = runEvents(e, events);
        collect(out, e.advanceClock(T0 + last + tail));
        const t1 = (x: { terminal_id: string }) => x.terminal_id === 'T1';
        expect(out.alerts.filter(t1).map((a) => [a.event_ids, a.window_start - T0, a.detected_at - T0])).toEqual(alerts);
        expect(out.alerts.filter(t1).every((a) => a.details.silence_ms === silence && a.details.last_seen_at === a.window_start)).toBe(true);
        expect(out.updates.filter(t1).map((u) => [u.alert_id, u.resolved_by_event_ids, u.resolved_at - T0, u.details.duration_ms, u.details.by_heartbeat])).toEqual(updates);
        // T2 beats faster than silence until T1's last event: quiet until then.
        expect(out.alerts.filter((a) => !t1(a) && a.detected_at <= T0 + last)).toEqual([]);
      }),
      { numRuns: 150 },
    );
  });

  it('restored from the entity changelog at random points, with random live clock ticks between events: exactly the alerts and updates of the unsplit run', () => {
    const arb = fc.record({
      stream: offlineStream,
      at: fc.nat({ max: 29 }),
      long: fc.integer({ min: 0, max: 2 * MIN }),
      hb: fc.boolean(),
      cuts: fc.uniqueArray(fc.nat({ max: 200 }), { minLength: 1, maxLength: 4 }),
      ticks: fc.array(fc.tuple(fc.nat({ max: 200 }), fc.double({ min: 0, max: 1, noNaN: true }))),
    });
    fc.assert(
      fc.property(arb, ({ stream, at, long, hb, cuts, ticks }) => {
        // At least one silence, so that there is an alert to close.
        const steps = [...stream.steps];
        steps.splice(Math.min(at, steps.length), 0, { gap: stream.silence + long, hb, queue: 3 });
        const { events, last } = buildOffline({ ...stream, steps });
        const cfg = only(stream.silence);
        const end = T0 + last + stream.tail;
        const expected = runSplit(cfg, events, new Set(), new Map(), end);
        expect(expected.alerts.length).toBeGreaterThan(0);
        expect(expected.updates.length).toBeGreaterThan(0);
        const out = runSplit(cfg, events, new Set(cuts.map((c) => c % events.length)), new Map(ticks.map(([i, f]) => [i % events.length, f])), end);
        expect([out.alerts, out.updates, out.actions]).toEqual([expected.alerts, expected.updates, expected.actions]);
      }),
      { numRuns: 60 },
    );
  });
});
