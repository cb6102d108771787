import { alertUpdateId } from '@tillwatch/schemas';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createChangelogView, createRuleEngine, parseRulesConfig, type ChangelogValue, type RulesConfig } from '../../../index.js';
import { alertId } from '../../../ids.js';
import { HOUR, MIN, SEC, Scenario, T0 } from '../../../../test/helpers/builder.js';
import { collect, runEvents } from '../../../../test/helpers/run.js';

const OTHERS = ['duplicate_charge', 'abnormal_amount', 'sequence_gap', 'refund_without_sale', 'refund_exceeds_sale'];
const only = (syncLag: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): RulesConfig =>
  parseRulesConfig({ ...extra, rules: { ...Object.fromEntries(OTHERS.map((r) => [r, { enabled: false }])), sync_lag: syncLag } });

describe('sync_lag', () => {
  it('config: default threshold 15m and episode_quiet 30m, durations, errors with their path', () => {
    expect(parseRulesConfig({}).rules.sync_lag).toEqual({ enabled: true, severity: 'low', mode: 'active', threshold: 15 * MIN, episode_quiet: 30 * MIN });
    expect(parseRulesConfig({ rules: { sync_lag: { threshold: '2m' } } }).rules.sync_lag.threshold).toBe(2 * MIN);
    expect(parseRulesConfig({ rules: { sync_lag: { episode_quiet: '1h' } } }).rules.sync_lag.episode_quiet).toBe(HOUR);
    expect(() => parseRulesConfig({ rules: { sync_lag: { threshold: 0 } } })).toThrow('rules.sync_lag.threshold: expected a duration of at least 1 ms, got 0');
    expect(() => parseRulesConfig({ rules: { sync_lag: { episode_quiet: 0 } } })).toThrow('rules.sync_lag.episode_quiet: expected a duration of at least 1 ms, got 0');
    expect(() => parseRulesConfig({ rules: { sync_lag: { episode_quiet: 'soon' } } })).toThrow('rules.sync_lag.episode_quiet');
  });

  it('reconnect upload interleaved with on-time sales, out of order: one alert, closed by one update with the numbers', () => {
    const s = new Scenario();
    s.sale({ at: 0, card: 'before' }); // on time, before the outage
    // Offline from 1h to 3h; the backlog (events at 1h..2h50m) is uploaded from 3h on, newest first
    // in places, with on-time sales made after the reconnect in between.
    const first = s.sale({ at: 1 * HOUR + 40 * MIN, recvAt: 3 * HOUR, card: 'b1' });
    s.sale({ at: 3 * HOUR + 10 * SEC, card: 'live1' });
    s.sale({ at: 1 * HOUR, recvAt: 3 * HOUR + 20 * SEC, card: 'b0' }); // the oldest, lag 2h 20s
    s.sale({ at: 3 * HOUR + 30 * SEC, card: 'live2' });
    s.sale({ at: 3 * HOUR + 40 * SEC, card: 'live3' });
    s.sale({ at: 2 * HOUR + 50 * MIN, recvAt: 3 * HOUR + 20 * MIN, card: 'b2' }); // last late one
    s.sale({ at: 3 * HOUR + 25 * MIN, card: 'live4' });
    s.sale({ at: 3 * HOUR + 49 * MIN, card: 'live5' }); // 29 min after the last late one: still open
    const e = createRuleEngine(only());
    const out = runEvents(e, s.events);
    expect(out.alerts.map((a) => a.event_ids)).toEqual([[first.event_id]]);
    expect(out.actions.map((a) => a.kind)).toEqual(['NOTIFY_MERCHANT']);
    expect(out.updates).toEqual([]); // no update while the episode is open, nor at the end of the input
    // The episode ends at last late + 30 min of the engine clock; resolved_at is that time, however late the clock moves.
    collect(out, e.advanceClock(T0 + 5 * HOUR));
    const id = alertId('sync_lag', 2, [first.event_id]);
    expect(out.alerts[0]!.alert_id).toBe(id);
    expect(out.updates).toEqual([
      {
        update_id: alertUpdateId(id, 'auto_resolved', 'episode_ended', []),
        alert_id: id,
        rule: 'sync_lag',
        rule_version: 2,
        terminal_id: 'T1',
        merchant_id: 'M1',
        status: 'auto_resolved',
        resolution: 'episode_ended',
        resolved_by_event_ids: [],
        resolved_at: T0 + 3 * HOUR + 50 * MIN,
        summary: "Terminal T1's late-sync episode ended: 3 late transactions held back for up to 2h, the episode lasted 2h 20m; none late for 30m since.",
        details: { duration_ms: 2 * HOUR + 20 * MIN, late_count: 3, max_lag_ms: 2 * HOUR + 20 * SEC },
      },
    ]);
    expect(out.alerts).toHaveLength(1);
  });

  it('a late transaction exactly episode_quiet after the last one starts a new episode; 1 ms before, it joins the old one', () => {
    const s = new Scenario();
    const a = s.sale({ at: 0, lag: 20 * MIN, card: 'a' });
    s.sale({ at: 30 * MIN - 1, lag: 20 * MIN, card: 'b' }); // received 30m - 1 ms after a: same episode
    const c = s.sale({ at: 60 * MIN - 1, lag: 20 * MIN, card: 'c' }); // exactly 30m after b: a new one
    const out = runEvents(createRuleEngine(only()), s.events);
    expect(out.alerts.map((x) => x.event_ids)).toEqual([[a.event_id], [c.event_id]]);
    expect(out.updates.map((u) => [u.alert_id, u.resolved_at - T0, u.details.late_count])).toEqual([[alertId('sync_lag', 2, [a.event_id]), 80 * MIN - 1, 2]]);
  });

  it('exactly `threshold` is on time; episode_quiet is configurable', () => {
    const s = new Scenario();
    s.sale({ at: 0, lag: 15 * MIN, card: 'a' });
    const b = s.sale({ at: MIN, lag: 15 * MIN + 1, card: 'b' });
    const c = s.sale({ at: 20 * MIN, lag: 15 * MIN + 1, card: 'c' }); // 19 min after b: beyond a 10m quiet
    const out = runEvents(createRuleEngine(only({ episode_quiet: '10m' })), s.events);
    expect(out.alerts.map((x) => x.event_ids)).toEqual([[b.event_id], [c.event_id]]);
    expect(out.updates.map((u) => [u.resolved_at - T0, u.details])).toEqual([[16 * MIN + 1 + 10 * MIN, { duration_ms: 15 * MIN + 1, late_count: 1, max_lag_ms: 15 * MIN + 1 }]]);
  });

  it('terminals have their own episodes', () => {
    const s = new Scenario();
    const a = s.sale({ at: 0, lag: HOUR, terminal: 'T1', card: 'a' });
    const b = s.sale({ at: MIN, lag: HOUR, terminal: 'T2', card: 'b' });
    s.sale({ at: 2 * MIN, lag: HOUR, terminal: 'T1', card: 'c' });
    const e = createRuleEngine(only());
    const out = runEvents(e, s.events);
    collect(out, e.advanceClock(T0 + 10 * HOUR));
    expect(out.alerts.map((x) => x.event_ids)).toEqual([[a.event_id], [b.event_id]]);
    expect(out.updates.map((u) => [u.terminal_id, u.details.late_count, u.resolved_at - T0])).toEqual([
      ['T2', 1, HOUR + MIN + 30 * MIN],
      ['T1', 2, HOUR + 2 * MIN + 30 * MIN],
    ]);
  });

  it('disabled: the episode is tracked but raises and closes nothing; shadow: a shadow alert and no update', () => {
    const s = new Scenario();
    s.sale({ at: 0, lag: HOUR, card: 'a' });
    s.sale({ at: 2 * HOUR, lag: HOUR, card: 'b' });
    for (const cfg of [only({ enabled: false }), only({ mode: 'shadow' }), only({}, { shadow: { sync_lag: { threshold: '5m' } } })]) {
      const e = createRuleEngine(cfg);
      const out = runEvents(e, s.events);
      collect(out, e.advanceClock(T0 + 10 * HOUR));
      const active = cfg.rules.sync_lag.enabled && cfg.rules.sync_lag.mode === 'active';
      expect(out.alerts).toHaveLength(active ? 2 : 0);
      expect(out.updates).toHaveLength(active ? 2 : 0); // the shadow instance's alerts are never closed by an update
      expect(out.shadowAlerts).toHaveLength(cfg.rules.sync_lag.mode === 'shadow' || Object.hasOwn(cfg.shadow, 'sync_lag') ? 2 : 0);
    }
  });

  it('the open episode survives the changelog: restored anywhere, the same alerts and the same updates', () => {
    const s = new Scenario();
    for (let k = 0; k < 12; k++) {
      s.sale({ at: 5 * HOUR + k * 7 * MIN, card: `live${k}` });
      if (k % 3 !== 2) s.sale({ at: HOUR + k * MIN, recvAt: 5 * HOUR + k * 7 * MIN + SEC, card: `late${k}` });
    }
    s.sale({ at: 8 * HOUR, card: 'after' });
    const cfg = only();
    const unsplit = runEvents(createRuleEngine(cfg), s.events);
    expect(unsplit.alerts).toHaveLength(1);
    expect(unsplit.updates).toHaveLength(1);
    for (let cut = 1; cut < s.events.length; cut++) {
      let e = createRuleEngine(cfg);
      let view = createChangelogView(e);
      const out = runEvents(e, s.events.slice(0, cut));
      const topic = new Map<string, ChangelogValue>();
      for (const [k, v] of JSON.parse(JSON.stringify(view.takeChanges())) as [string, ChangelogValue | null][]) {
        if (v === null) topic.delete(k);
        else topic.set(k, v);
      }
      const clock = e.clock();
      e = createRuleEngine(cfg);
      view = createChangelogView(e);
      e.setClock(clock);
      view.restore(topic);
      runEvents(e, s.events.slice(cut), out);
      expect(out.alerts).toEqual(unsplit.alerts);
      expect(out.updates).toEqual(unsplit.updates);
    }
  });

  it('one alert per episode, closed by one update (property: against a direct model)', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ late: fc.boolean(), gap: fc.integer({ min: 0, max: 45 * MIN }) }), { minLength: 1, maxLength: 60 }), (steps) => {
        const s = new Scenario();
        let recv = 0;
        let lastLate = 0;
        let open = false;
        const starts: string[] = [];
        const ends: number[] = [];
        steps.forEach(({ late, gap }, i) => {
          recv += gap;
          const t = s.sale({ at: recv - (late ? 20 * MIN : 1000), recvAt: recv, card: `c${i}` });
          // Any event moves the clock: an open episode whose quiet period has passed ends first.
          if (open && recv >= lastLate + 30 * MIN) {
            ends.push(lastLate + 30 * MIN);
            open = false;
          }
          if (!late) return;
          if (!open) starts.push(t.event_id);
          open = true;
          lastLate = recv;
        });
        const out = runEvents(createRuleEngine(only()), s.events);
        expect(out.alerts.map((a) => a.event_ids)).toEqual(starts.map((id) => [id]));
        expect(out.updates.map((u) => u.resolved_at - T0)).toEqual(ends);
        expect(out.updates.map((u) => u.alert_id)).toEqual(starts.slice(0, ends.length).map((id) => alertId('sync_lag', 2, [id])));
      }),
    );
  });

  it('reads a sync_lag@1 snapshot (only the lag_episode flag): the episode goes on, with no alert to close', () => {
    const e = createRuleEngine(only());
    e.restoreMerchant('M1', { v: 1, clock: T0, terminals: [{ id: 'T1', last_received: T0, lag_episode: true } as never], sales: [] });
    const s = new Scenario();
    s.sale({ at: 0, lag: 10 * MIN + HOUR, card: 'a' }); // received at T0 + 1h10m: after the episode's end (T0 + 50m), a new one
    s.sale({ at: 0, lag: 20 * MIN, card: 'b' }); // received at T0 + 20m: joins the restored episode (no alert)
    const out = runEvents(e, [s.events[1]!, s.events[0]!]);
    expect(out.alerts.map((a) => a.event_ids)).toEqual([[s.events[0]!.event_id]]);
    expect(out.updates).toEqual([]);
  });
});
