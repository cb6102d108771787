import { alertUpdateId } from '@tillwatch/schemas';
import { describe, expect, it } from 'vitest';
import { RULE_IDS, createRuleEngine, heartbeatEventId, parseRulesConfig, type RulesConfig } from '../../../index.js';
import { alertId } from '../../../ids.js';
import { MIN, SEC, Scenario, T0 } from '../../../../test/helpers/builder.js';
import { collect, collected, runEvents, runWithRestoreAt } from '../../../../test/helpers/run.js';

const only = (p: Record<string, unknown> = {}): RulesConfig =>
  parseRulesConfig({ rules: { ...Object.fromEntries(RULE_IDS.filter((r) => r !== 'terminal_offline').map((r) => [r, { enabled: false }])), terminal_offline: p } });

/** Heartbeats of T1 every `every` ms over [from, to). */
function beats(s: Scenario, from: number, to: number, every: number, terminal = 'T1'): void {
  for (let at = from; at < to; at += every) s.heartbeat({ at, terminal });
}

describe('terminal_offline', () => {
  it('config: default silence 10m, a duration; errors with their path', () => {
    expect(parseRulesConfig({}).rules.terminal_offline).toEqual({ enabled: true, severity: 'medium', mode: 'active', silence: 10 * MIN });
    expect(parseRulesConfig({ rules: { terminal_offline: { silence: '3m' } } }).rules.terminal_offline.silence).toBe(3 * MIN);
    expect(() => parseRulesConfig({ rules: { terminal_offline: { silence: 0 } } })).toThrow('rules.terminal_offline.silence: expected a duration of at least 1 ms, got 0');
  });

  for (const every of [60 * SEC, 4 * MIN, 9 * MIN + 59 * SEC]) {
    it(`any cadence shorter than silence (${every / SEC} s): quiet while it beats; one alert per silence, closed when it comes back`, () => {
      const s = new Scenario();
      beats(s, 0, 60 * MIN, every);
      const last = s.events.at(-1)!;
      // Silent from the last heartbeat until 90 min; another terminal's heartbeats move the clock.
      beats(s, 0, 120 * MIN, every, 'T2');
      const back = s.heartbeat({ at: 90 * MIN, queue: 7 });
      beats(s, 90 * MIN + every, 120 * MIN, every);
      const e = createRuleEngine(only());
      const out = runEvents(e, [...s.events].sort((a, b) => a.received_time - b.received_time));
      expect(out.alerts).toHaveLength(1);
      const a = out.alerts[0]!;
      expect(a).toMatchObject({ rule: 'terminal_offline', rule_version: 1, terminal_id: 'T1', event_ids: [last.event_id], detected_at: last.received_time + 10 * MIN, window_start: last.received_time });
      expect(a.details).toEqual({ silence_ms: 10 * MIN, last_seen_at: last.received_time, last_seq: 0, queue_depth: 0, last_was_heartbeat: 1 });
      expect(out.actions.map((x) => x.kind)).toEqual(['NOTIFY_MERCHANT']);
      expect(out.updates).toEqual([
        expect.objectContaining({
          update_id: alertUpdateId(a.alert_id, 'auto_resolved', 'episode_ended', [back.event_id]),
          alert_id: a.alert_id,
          rule: 'terminal_offline',
          status: 'auto_resolved',
          resolution: 'episode_ended',
          resolved_by_event_ids: [back.event_id],
          resolved_at: back.received_time,
          details: { duration_ms: back.received_time - last.received_time, silence_ms: 10 * MIN, by_heartbeat: 1, queue_depth: 7 },
        }),
      ]);
    });
  }

  it('a transaction is a sign of life too; a terminal that never sent a heartbeat is not watched', () => {
    const s = new Scenario();
    s.heartbeat({ at: 0 });
    s.sale({ at: 9 * MIN }); // keeps T1 alive until 19 min
    s.sale({ at: 0, terminal: 'T2' }); // never heartbeats
    s.sale({ at: 18 * MIN, terminal: 'T3' });
    const sale = s.sale({ at: 18 * MIN + 30 * SEC }); // T1 at 18.5 min
    s.sale({ at: 40 * MIN, terminal: 'T3' }); // clock to 40 min: T1 silent since 18.5 min
    const back = s.sale({ at: 45 * MIN, card: 'back' });
    const out = runEvents(createRuleEngine(only()), s.events);
    expect(out.alerts.map((a) => [a.terminal_id, a.event_ids, a.detected_at - T0])).toEqual([['T1', [sale.event_id], 18 * MIN + 30 * SEC + 1500 + 10 * MIN]]);
    expect(out.alerts[0]!.details.last_was_heartbeat).toBe(0);
    expect(out.updates.map((u) => [u.resolved_by_event_ids, u.details])).toEqual([[[back.event_id], { duration_ms: back.received_time - sale.received_time, silence_ms: 10 * MIN, by_heartbeat: 0 }]]);
  });

  it('a record from before the silence processed after the alert is no return: no false update, no second alert with the same id', () => {
    const s = new Scenario();
    beats(s, 0, 6 * MIN, 60 * SEC); // T1's last heartbeat at 5 min
    const last = s.events.at(-1)!;
    for (let at = 0; at <= 20 * MIN; at += MIN) s.sale({ at, terminal: 'T2', card: `c${at}` }); // clock to 20 min: T1 offline at 15 min
    const old = s.heartbeat({ at: 4 * MIN + 30 * SEC }); // received before `last`, processed now
    s.sale({ at: 21 * MIN, terminal: 'T2', card: 'late' });
    const back = s.heartbeat({ at: 30 * MIN, queue: 2 });
    const out = runEvents(createRuleEngine(only()), s.events);
    expect(out.alerts.map((a) => [a.terminal_id, a.event_ids])).toEqual([['T1', [last.event_id]]]);
    expect(out.actions).toHaveLength(1);
    expect(out.updates.map((u) => u.resolved_by_event_ids)).toEqual([[back.event_id]]);
    expect(out.updates.map((u) => u.resolved_by_event_ids)).not.toContainEqual([old.event_id]);
  });

  it('the clock alone (advanceClock, as the live detector ticks) fires it; a disabled or shadow rule raises nothing into alerts and closes nothing', () => {
    const s = new Scenario();
    const h = s.heartbeat({ at: 0 });
    const e = createRuleEngine(only());
    e.onHeartbeat(h);
    expect(e.advanceClock(h.received_time + 10 * MIN - 1).alerts).toEqual([]);
    const fired = e.advanceClock(h.received_time + 10 * MIN).alerts;
    expect(fired.map((a) => a.alert_id)).toEqual([alertId('terminal_offline', 1, [heartbeatEventId(h)])]);
    expect(e.advanceClock(h.received_time + 3 * 60 * MIN).alerts).toEqual([]); // one per silence

    for (const cfg of [only({ enabled: false }), only({ mode: 'shadow' })]) {
      const x = createRuleEngine(cfg);
      const out = collected();
      collect(out, x.onHeartbeat(h));
      collect(out, x.advanceClock(h.received_time + 20 * MIN));
      collect(out, x.onHeartbeat(s.heartbeat({ at: 30 * MIN })));
      expect([out.alerts, out.updates]).toEqual([[], []]);
      expect(out.shadowAlerts).toHaveLength(cfg.rules.terminal_offline.mode === 'shadow' ? 1 : 0);
    }
  });

  it('restored from the entity changelog mid-silence and while offline: the same alert and update', () => {
    const s = new Scenario();
    beats(s, 0, 30 * MIN, 2 * MIN);
    beats(s, 0, 100 * MIN, 2 * MIN, 'T2');
    s.heartbeat({ at: 80 * MIN });
    beats(s, 82 * MIN, 100 * MIN, 2 * MIN);
    const events = s.events.sort((a, b) => a.received_time - b.received_time);
    const expected = runEvents(createRuleEngine(only()), events);
    expect([expected.alerts.length, expected.updates.length]).toEqual([1, 1]);
    for (let cut = 1; cut < events.length; cut += 3) {
      const out = runWithRestoreAt(only(), events, cut);
      expect([out.alerts, out.updates]).toEqual([expected.alerts, expected.updates]);
    }
  });
});
