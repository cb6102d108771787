// Properties of upload_backlog over random heartbeat streams (fast-check): a queue that keeps shrinking,
// or stays below min_queue, never alerts; a backlog >= min_queue that does not shrink for stuck_for
// alerts exactly once and is closed by one update when it falls below min_queue; the same output
// against a direct model of the README, and whatever the restore points and clock ticks.
// The terminals here heartbeat before their first transaction (most send none): the properties do not
// depend on how seqs received before a terminal's first heartbeat count.
import type { Heartbeat, Transaction } from '@tillwatch/schemas';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RULE_IDS, createRuleEngine, parseRulesConfig, type RulesConfig } from '../../../index.js';
import { alertId } from '../../../ids.js';
import { MIN, SEC, Scenario, T0 } from '../../../../test/helpers/builder.js';
import { runEvents, runSplit } from '../../../../test/helpers/run.js';

const only = (min_queue: number, stuck_for: number): RulesConfig =>
  parseRulesConfig({ rules: { ...Object.fromEntries(RULE_IDS.filter((r) => r !== 'upload_backlog').map((r) => [r, { enabled: false }])), upload_backlog: { min_queue, stuck_for } } });

type Event = Transaction | Heartbeat;
interface Beat {
  recv: number;
  et: number;
  id: string;
  queue: number;
}

/** In arrival order (stable: equal received times keep their order). */
const arrival = (s: Scenario): Event[] => [...s.events].sort((a, b) => a.received_time - b.received_time);

/** A heartbeat of `terminal` received at `recv` (ms after T0) reporting `queue`; no transaction counted as synced unless lastSeq says so. */
function beat(s: Scenario, terminal: string, recv: number, queue: number, lastSeq = 0): Beat {
  const h = s.heartbeat({ at: recv - 500, terminal, queue, lastSeq });
  return { recv, et: h.event_time - T0, id: h.event_id, queue };
}

const params = fc.record({ minQueue: fc.integer({ min: 1, max: 8 }), stuckMin: fc.integer({ min: 1, max: 15 }) });

/** One backlog: calm heartbeats below min_queue, a run >= min_queue that never shrinks until stuck_for has passed, anything >= min_queue, then below min_queue. */
const episode = (minQueue: number, stuckFor: number) => {
  const anyGap = fc.integer({ min: SEC, max: 3 * stuckFor });
  return fc.record({
    calm: fc.array(fc.record({ gap: anyGap, queue: fc.nat({ max: minQueue - 1 }) }), { maxLength: 4 }),
    gap: anyGap,
    start: fc.integer({ min: minQueue, max: minQueue + 20 }),
    // Whole minutes often add up to exactly stuck_for (the boundary: it fires there).
    stuck: fc.array(fc.record({ gap: fc.oneof(fc.integer({ min: 1, max: stuckFor / MIN }).map((m) => m * MIN), fc.integer({ min: SEC, max: stuckFor })), up: fc.nat({ max: 3 }) }), { maxLength: 20 }),
    over: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2 * MIN })),
    open: fc.array(fc.record({ gap: anyGap, queue: fc.integer({ min: minQueue, max: minQueue + 30 }) }), { maxLength: 5 }),
    closeGap: anyGap,
    close: fc.nat({ max: minQueue - 1 }),
  });
};
type Episode = ReturnType<typeof episode> extends fc.Arbitrary<infer E> ? E : never;

interface Expected {
  alert: [string, string[], number, number, number, number];
  update: [string, string[], number, number, number, number];
}

/**
 * The episodes of one terminal as heartbeats into `s` (via `emit`, which may add transactions too),
 * from `recv` on; returns what the README says each episode raises.
 */
function buildEpisodes(eps: Episode[], stuckFor: number, emit: (recv: number, queue: number) => Beat, recv0: number): Expected[] {
  let recv = recv0;
  const out: Expected[] = [];
  for (const ep of eps) {
    for (const c of ep.calm) emit((recv += c.gap), c.queue);
    let q = ep.start;
    const since = emit((recv += ep.gap), q);
    let max = q;
    let fire: Beat | undefined;
    for (const st of ep.stuck) {
      q += st.up;
      max = Math.max(max, q);
      const b = emit((recv += st.gap), q);
      if (recv - since.recv >= stuckFor) {
        fire = b;
        break;
      }
    }
    if (fire === undefined) {
      recv = since.recv + stuckFor + ep.over;
      fire = emit(recv, q);
    }
    for (const o of ep.open) {
      max = Math.max(max, o.queue);
      emit((recv += o.gap), o.queue);
    }
    const close = emit((recv += ep.closeGap), ep.close);
    const id = alertId('upload_backlog', 1, [since.id, fire.id]);
    out.push({
      alert: [id, [since.id, fire.id], since.et, fire.recv, fire.queue, fire.recv - since.recv],
      update: [id, [close.id], close.recv, close.recv - since.recv, max, ep.close],
    });
  }
  return out;
}

const alertRow = (a: { alert_id: string; event_ids: string[]; window_start: number; detected_at: number; details: Record<string, number> }) => [a.alert_id, a.event_ids, a.window_start - T0, a.detected_at - T0, a.details.backlog, a.details.stuck_ms];
const updateRow = (u: { alert_id: string; resolved_by_event_ids: string[]; resolved_at: number; details: Record<string, number> }) => [u.alert_id, u.resolved_by_event_ids, u.resolved_at - T0, u.details.duration_ms, u.details.max_backlog, u.details.backlog];

describe('upload_backlog properties', () => {
  it('a queue that keeps shrinking never alerts, however slowly; nor one below min_queue, however long', () => {
    const arb = params.chain(({ minQueue, stuckMin }) =>
      fc.record({
        minQueue: fc.constant(minQueue),
        stuckFor: fc.constant(stuckMin * MIN),
        start: fc.integer({ min: minQueue, max: minQueue + 60 }),
        // Gaps up to 5 x stuck_for: each heartbeat is far beyond stuck_for after the previous one.
        down: fc.array(fc.record({ gap: fc.integer({ min: SEC, max: 5 * stuckMin * MIN }), by: fc.integer({ min: 1, max: 4 }) }), { minLength: 1, maxLength: 40 }),
        low: fc.array(fc.record({ gap: fc.integer({ min: SEC, max: 5 * stuckMin * MIN }), queue: fc.nat({ max: minQueue - 1 }) }), { maxLength: 40 }),
      }),
    );
    fc.assert(
      fc.property(arb, ({ minQueue, stuckFor, start, down, low }) => {
        const s = new Scenario();
        let recv = MIN;
        let q = start;
        beat(s, 'T1', recv, q);
        for (const d of down) beat(s, 'T1', (recv += d.gap), (q = Math.max(0, q - d.by)));
        recv = MIN;
        for (const l of low) beat(s, 'T2', (recv += l.gap), l.queue);
        const out = runEvents(createRuleEngine(only(minQueue, stuckFor)), arrival(s));
        expect([out.alerts, out.updates]).toEqual([[], []]);
      }),
      { numRuns: 100 },
    );
  });

  it('a backlog >= min_queue that does not shrink for stuck_for alerts exactly once (whatever it does next), closed by one update when it falls below min_queue; terminals apart', () => {
    const arb = params.chain(({ minQueue, stuckMin }) =>
      fc.record({
        minQueue: fc.constant(minQueue),
        stuckFor: fc.constant(stuckMin * MIN),
        terminals: fc.array(fc.record({ start: fc.nat({ max: 30 * MIN }), eps: fc.array(episode(minQueue, stuckMin * MIN), { minLength: 1, maxLength: 3 }) }), { minLength: 1, maxLength: 2 }),
      }),
    );
    fc.assert(
      fc.property(arb, ({ minQueue, stuckFor, terminals }) => {
        const s = new Scenario();
        const expected = terminals.map(({ start, eps }, n) => buildEpisodes(eps, stuckFor, (recv, queue) => beat(s, `T${n}`, recv, queue), start));
        const out = runEvents(createRuleEngine(only(minQueue, stuckFor)), arrival(s));
        terminals.forEach((_, n) => {
          const mine = (x: { terminal_id: string }) => x.terminal_id === `T${n}`;
          expect(out.alerts.filter(mine).map(alertRow)).toEqual(expected[n]!.map((x) => x.alert));
          expect(out.updates.filter(mine).map(updateRow)).toEqual(expected[n]!.map((x) => x.update));
        });
        expect(out.actions.map((a) => a.kind)).toEqual(out.alerts.map(() => 'NOTIFY_MERCHANT'));
      }),
      { numRuns: 100 },
    );
  });

  it('any queue_depth stream gives the alerts and updates of a direct model of the README', () => {
    const arb = params.chain(({ minQueue, stuckMin }) =>
      fc.record({
        minQueue: fc.constant(minQueue),
        stuckFor: fc.constant(stuckMin * MIN),
        beats: fc.array(fc.record({ gap: fc.oneof(fc.integer({ min: 1, max: stuckMin }).map((m) => m * MIN), fc.integer({ min: SEC, max: 2 * stuckMin * MIN })), queue: fc.nat({ max: 2 * minQueue + 2 }) }), { maxLength: 80 }),
      }),
    );
    fc.assert(
      fc.property(arb, ({ minQueue, stuckFor, beats }) => {
        const s = new Scenario();
        let recv = 0;
        const hs = beats.map((b) => beat(s, 'T1', (recv += b.gap), b.queue));
        // The model: a run starts at the first heartbeat >= min_queue and restarts at every one smaller than
        // the previous; it fires at the first heartbeat of the run >= stuck_for after it (re)started; once
        // fired it stays open (shrinking or not) until a heartbeat below min_queue closes it.
        const alerts: unknown[] = [];
        const updates: unknown[] = [];
        let run: { since: Beat; began: number; last: number; max: number; alert: string | null } | null = null;
        for (const h of hs) {
          if (h.queue < minQueue) {
            if (run !== null && run.alert !== null) updates.push([run.alert, [h.id], h.recv, h.recv - run.began, run.max, h.queue]);
            run = null;
          } else if (run === null) run = { since: h, began: h.recv, last: h.queue, max: h.queue, alert: null };
          else {
            run.max = Math.max(run.max, h.queue);
            if (run.alert === null && h.queue < run.last) run.since = h;
            else if (run.alert === null && h.recv - run.since.recv >= stuckFor) {
              run.alert = alertId('upload_backlog', 1, [run.since.id, h.id]);
              alerts.push([run.alert, [run.since.id, h.id], run.since.et, h.recv, h.queue, h.recv - run.since.recv]);
            }
            run.last = h.queue;
          }
        }
        const out = runEvents(createRuleEngine(only(minQueue, stuckFor)), s.events);
        expect(out.alerts.map(alertRow)).toEqual(alerts);
        expect(out.updates.map(updateRow)).toEqual(updates);
      }),
      { numRuns: 150 },
    );
  });

  it('restored from the entity changelog at random points, with random live clock ticks between events: exactly the alerts and updates of the unsplit run (backlogs seen through queue_depth or last_seq)', () => {
    const arb = params.chain(({ minQueue, stuckMin }) =>
      fc.record({
        minQueue: fc.constant(minQueue),
        stuckFor: fc.constant(stuckMin * MIN),
        terminals: fc.array(fc.array(episode(minQueue, stuckMin * MIN), { minLength: 1, maxLength: 2 }), { minLength: 1, maxLength: 2 }),
        // Per heartbeat: transactions synced just before it, and whether it reports its backlog as
        // queue_depth or only through last_seq (ahead of the highest seq received).
        how: fc.array(fc.record({ sales: fc.nat({ max: 2 }), bySeq: fc.boolean() }), { minLength: 1, maxLength: 50 }),
        cuts: fc.uniqueArray(fc.nat({ max: 400 }), { minLength: 1, maxLength: 4 }),
        ticks: fc.array(fc.tuple(fc.nat({ max: 400 }), fc.double({ min: 0, max: 1, noNaN: true }))),
      }),
    );
    fc.assert(
      fc.property(arb, ({ minQueue, stuckFor, terminals, how, cuts, ticks }) => {
        const s = new Scenario();
        let k = 0;
        let episodes = 0;
        terminals.forEach((eps, n) => {
          const terminal = `T${n}`;
          let seq = 0;
          let first = true;
          episodes += eps.length;
          buildEpisodes(
            eps,
            stuckFor,
            (recv, queue) => {
              const h = how[k++ % how.length]!;
              // Transactions only after the terminal's first heartbeat, all received (synced) just before this one (same received time, added first).
              if (!first) for (let j = h.sales; j > 0; j--) s.sale({ at: recv - j * SEC, recvAt: recv, terminal, seq: ++seq, card: `c${s.events.length}` });
              first = false;
              // Seen through last_seq only once a transaction of the terminal was received (before that, seq_ahead is 0).
              return beat(s, terminal, recv, h.bySeq && seq > 0 ? 0 : queue, seq + queue);
            },
            0,
          );
        });
        const events = arrival(s);
        const cfg = only(minQueue, stuckFor);
        const expected = runSplit(cfg, events, new Set(), new Map());
        expect([expected.alerts.length, expected.updates.length]).toEqual([episodes, episodes]);
        const out = runSplit(cfg, events, new Set(cuts.map((c) => c % events.length)), new Map(ticks.map(([i, f]) => [i % events.length, f])));
        expect([out.alerts, out.updates, out.actions]).toEqual([expected.alerts, expected.updates, expected.actions]);
      }),
      { numRuns: 60 },
    );
  });
});
