// Unit cases of the stage core with synthetic inputs (terminal_offline included, which the detector
// may not produce yet): incident opening, joining, the offline-then-upload outage as one incident,
// closing `quiet` after the last recovery, the active-share threshold, and the governor's caps.
import { describe, expect, it } from 'vitest';
import { defaultRulesConfig, type RulesConfig } from '@tillwatch/rules';
import type { Action } from '@tillwatch/schemas';
import { createStageCore, type StageOutput } from '../src/core.js';
import { createActivityTracker } from '../src/derive.js';
import type { StageRecord } from '../src/types.js';

const MIN = 60_000;
const T = Date.UTC(2025, 0, 6, 9);

const start = (i: number, time: number, rule = 'sync_lag', id = `${rule}-${i}`): StageRecord => ({ type: 'start', partition: 0, time, rule, alert_id: id, terminal_id: `T${i}`, merchant_id: `M${i}`, event_id: `ev-${id}` });
const end = (i: number, time: number, rule = 'sync_lag', id = `${rule}-${i}`): StageRecord => ({ type: 'end', partition: 0, time, rule, alert_id: id, terminal_id: `T${i}`, merchant_id: `M${i}` });
const wm = (time: number): StageRecord => ({ type: 'watermark', partition: 0, time });
const seen = (i: number, time: number): StageRecord => ({ type: 'seen', partition: 0, time, terminal_id: `T${i}`, merchant_id: `M${i}`, bucket: Math.floor(time / 3_600_000) });
const action = (i: number, time: number, kind: Action['kind'], rule: string, merchant = `M${i}`): StageRecord => ({
  type: 'action',
  partition: 0,
  time,
  action: { action_id: `a-${kind}-${i}-${time}`, kind, target_type: 'TERMINAL', target_id: `T${i}`, merchant_id: merchant, terminal_id: `T${i}`, alert_id: `al-${i}-${time}`, rule, reason: 'x', issued_at: time, expires_at: null },
});

function run(records: StageRecord[], c: RulesConfig = defaultRulesConfig()): StageOutput {
  const core = createStageCore({ partitions: 1, config: c });
  const a = core.apply(records);
  const b = core.flush();
  return { alerts: [...a.alerts, ...b.alerts], updates: [...a.updates, ...b.updates], actions: [...a.actions, ...b.actions], decisions: [...a.decisions, ...b.decisions], memberships: [...a.memberships, ...b.memberships] };
}

describe('sync_incident', () => {
  it('opens one incident at the 10th terminal within the window; later ones join', () => {
    const recs = Array.from({ length: 14 }, (_, i) => start(i, T + i * MIN));
    const o = run([...recs, wm(T + 20 * MIN)]);
    expect(o.alerts).toHaveLength(1);
    const a = o.alerts[0]!;
    expect(a).toMatchObject({ rule: 'sync_incident', severity: 'critical', detected_at: T + 9 * MIN, window_start: T, terminal_id: '*' });
    expect(a.details.terminals).toBe(10);
    expect(a.event_ids).toEqual(Array.from({ length: 10 }, (_, i) => `ev-sync_lag-${i}`));
    expect(o.actions.map((x) => x.kind)).toEqual(['NOTIFY_ACQUIRER']);
  });

  it('9 terminals in the window, or 10 spread wider than the window: no incident', () => {
    expect(run([...Array.from({ length: 9 }, (_, i) => start(i, T + i * MIN)), wm(T + 60 * MIN)]).alerts).toHaveLength(0);
    expect(run([...Array.from({ length: 10 }, (_, i) => start(i, T + i * 2 * MIN)), wm(T + 60 * MIN)]).alerts).toHaveLength(0);
  });

  it('an outage seen first as silence, then as the late upload, is one incident closed quiet after the last recovery', () => {
    const recs: StageRecord[] = [];
    // Each terminal's last sign of life (as the detector publishes it), then its silence.
    for (let i = 0; i < 12; i++) recs.push(seen(i, T - 10 * MIN + i * 10_000), start(i, T + i * 10_000, 'terminal_offline'));
    // Back online at +40 min (offline ends), the upload opens sync_lag episodes at once.
    for (let i = 0; i < 12; i++) recs.push(end(i, T + 40 * MIN + i * 1000, 'terminal_offline'), start(i, T + 40 * MIN + i * 1000 + 1));
    // The sync episodes end 30 min after their last late transaction.
    for (let i = 0; i < 12; i++) recs.push(end(i, T + 75 * MIN + i * 1000));
    const lastRecovery = T + 75 * MIN + 11 * 1000;
    const o = run([...recs, wm(T + 200 * MIN)]);
    expect(o.alerts.filter((a) => a.rule === 'sync_incident')).toHaveLength(1);
    expect(o.updates).toHaveLength(1);
    expect(o.updates[0]).toMatchObject({ alert_id: o.alerts[0]!.alert_id, status: 'auto_resolved', resolution: 'episode_ended', resolved_at: lastRecovery + 30 * MIN });
    expect(o.updates[0]!.details).toMatchObject({ terminals: 12, episodes: 24, still_open: 0 });
    expect(o.updates[0]!.summary).toContain('all recovered');
  });

  it("links every member alert to the incident: the opening starts, later entries, and upload_backlog/sequence_gap of member terminals while it is open", () => {
    const memberAlert = (i: number, time: number, rule: string): StageRecord => ({ type: 'alert', partition: 0, time, rule, alert_id: `${rule}-${i}`, terminal_id: `T${i}`, merchant_id: `M${i}` });
    const recs: StageRecord[] = [
      // Before the incident, more than `window` (15 min) before T0's start: stays unlinked.
      memberAlert(0, T - 16 * MIN, 'upload_backlog'),
      ...Array.from({ length: 12 }, (_, i) => start(i, T + i * MIN)),
      // While open: a sequence_gap of member T2 joins; one of T40 (not a member, never entering) does not.
      memberAlert(2, T + 13 * MIN, 'sequence_gap'),
      memberAlert(40, T + 13 * MIN, 'sequence_gap'),
      // T0 leaves its episode, is still a member while the incident is open: its second episode joins.
      end(0, T + 14 * MIN),
      start(0, T + 15 * MIN, 'terminal_offline'),
    ];
    const o = run([...recs, wm(T + 20 * MIN)]);
    const inc = o.alerts[0]!.alert_id;
    expect(o.memberships.map((m) => [m.alert_id, m.role, m.joined_at - T])).toEqual([
      ...Array.from({ length: 10 }, (_, i) => [`sync_lag-${i}`, 'opening', 9 * MIN]),
      ['sync_lag-10', 'joined', 10 * MIN],
      ['sync_lag-11', 'joined', 11 * MIN],
      ['sequence_gap-2', 'during', 13 * MIN],
      ['terminal_offline-0', 'joined', 15 * MIN],
    ]);
    expect(o.memberships.every((m) => m.incident_id === inc)).toBe(true);
    expect(o.memberships[0]).toMatchObject({ rule: 'sync_lag', terminal_id: 'T0', merchant_id: 'M0', alert_detected_at: T });
    // Deterministic ids, one per alert.
    expect(new Set(o.memberships.map((m) => m.membership_id)).size).toBe(o.memberships.length);
    expect(run([...recs, wm(T + 20 * MIN)]).memberships).toEqual(o.memberships);
  });

  const memberAlert = (i: number, time: number, rule: string, id = `${rule}-${i}`): StageRecord => ({ type: 'alert', partition: 0, time, rule, alert_id: id, terminal_id: `T${i}`, merchant_id: `M${i}` });
  const openAt = (at: number): StageRecord[] => Array.from({ length: 10 }, (_, i) => start(i, at + i * 1000));

  it("links a terminal's upload_backlog raised before it goes offline and joins (role before), at its entry", () => {
    const recs: StageRecord[] = [
      ...openAt(T),
      // T20's queue is stuck (upload_backlog) 8 min before the stage sees it go offline, and a gap 2 min before.
      memberAlert(20, T + 2 * MIN, 'upload_backlog'),
      memberAlert(20, T + 8 * MIN, 'sequence_gap'),
      start(20, T + 10 * MIN, 'terminal_offline'),
      // Once a member: during.
      memberAlert(20, T + 11 * MIN, 'sequence_gap', 'sequence_gap-20b'),
    ];
    const o = run([...recs, wm(T + 20 * MIN)]);
    const inc = o.alerts[0]!.alert_id;
    expect(o.memberships.filter((m) => m.terminal_id === 'T20').map((m) => [m.alert_id, m.role, m.joined_at - T, m.alert_detected_at - T])).toEqual([
      ['terminal_offline-20', 'joined', 10 * MIN, 10 * MIN],
      ['upload_backlog-20', 'before', 10 * MIN, 2 * MIN],
      ['sequence_gap-20', 'before', 10 * MIN, 8 * MIN],
      ['sequence_gap-20b', 'during', 11 * MIN, 11 * MIN],
    ]);
    expect(o.memberships.every((m) => m.incident_id === inc)).toBe(true);
    expect(new Set(o.memberships.map((m) => m.alert_id)).size).toBe(o.memberships.length);
  });

  it("an opening terminal's upload_backlog within window before its start is linked at the opening; one older than window stays unlinked", () => {
    const recs: StageRecord[] = [
      // T0 starts at T; the incident opens at T + 9 s. T0's backlog 14 min before its start: before.
      memberAlert(0, T - 14 * MIN, 'upload_backlog'),
      // T1's backlog 15 min before its start (T + 1 s): exactly `window`, not within it.
      memberAlert(1, T + 1000 - 15 * MIN, 'upload_backlog'),
      ...openAt(T),
    ];
    const o = run([...recs, wm(T + 20 * MIN)]);
    const before = o.memberships.filter((m) => m.role === 'before');
    expect(before.map((m) => [m.alert_id, m.joined_at - T])).toEqual([['upload_backlog-0', 9000]]);
    expect(o.memberships.some((m) => m.alert_id === 'upload_backlog-1')).toBe(false);
  });

  it('a backlog older than window before the offline entry stays unlinked', () => {
    const recs: StageRecord[] = [
      memberAlert(20, T - 10 * MIN, 'upload_backlog'),
      ...openAt(T),
      // T20 goes offline 16 min after its backlog: older than the window.
      start(20, T + 6 * MIN, 'terminal_offline'),
    ];
    const o = run([...recs, wm(T + 20 * MIN)]);
    expect(o.memberships.map((m) => m.alert_id)).toContain('terminal_offline-20');
    expect(o.memberships.some((m) => m.alert_id === 'upload_backlog-20')).toBe(false);
  });

  it('keeps the unlinked alerts in the changelog (prior:<terminal>) and links them after a restore', () => {
    const recs: StageRecord[] = [memberAlert(20, T - 5 * MIN, 'upload_backlog'), ...openAt(T), start(20, T + 5 * MIN, 'terminal_offline'), wm(T + 20 * MIN)];
    const whole = run(recs);
    expect(whole.memberships.find((m) => m.alert_id === 'upload_backlog-20')).toMatchObject({ role: 'before', joined_at: T + 5 * MIN });
    const a = createStageCore({ partitions: 1, config: defaultRulesConfig() });
    const first = a.apply([recs[0]!, wm(T - MIN)]);
    const changes = a.takeChanges();
    expect(changes.find(([k]) => k === 'prior:T20')?.[1]).toEqual([{ time: T - 5 * MIN, rule: 'upload_backlog', alert_id: 'upload_backlog-20', merchant_id: 'M20' }]);
    const b = createStageCore({ partitions: 1, config: defaultRulesConfig() });
    b.restore(new Map(changes.map(([k, v]) => [k, JSON.parse(JSON.stringify(v)) as unknown])));
    const rest = b.apply(recs.slice(1));
    const fin = b.flush();
    expect([...first.memberships, ...rest.memberships, ...fin.memberships]).toEqual(whole.memberships);
    // Linked: the terminal's kept alerts are tombstoned.
    expect(b.takeChanges().find(([k]) => k === 'prior:T20')?.[1]).toBeNull();
  });

  it('stays open while a terminal is still offline, and not closed before the watermark passes quiet', () => {
    const recs: StageRecord[] = Array.from({ length: 10 }, (_, i) => [seen(i, T - 10 * MIN + i * 1000), start(i, T + i * 1000, 'terminal_offline')]).flat();
    for (let i = 1; i < 10; i++) recs.push(end(i, T + 20 * MIN, 'terminal_offline'));
    expect(run([...recs, wm(T + 600 * MIN)]).updates).toHaveLength(0); // T0 never came back
    recs.push(end(0, T + 30 * MIN, 'terminal_offline'));
    expect(run([...recs, wm(T + 60 * MIN - 1)]).updates).toHaveLength(0);
    expect(run([...recs, wm(T + 60 * MIN)]).updates).toHaveLength(1);
  });

  describe('a member that never comes back (a retired terminal) holds the incident open only while it is active', () => {
    const DAY = 24 * 60 * MIN;
    const notify = (i: number, time: number): StageRecord => action(i, time, 'NOTIFY_MERCHANT', 'sync_lag');
    // 12 terminals go silent (last sign of life 10 min before each silence); 11 come back at +40 min, T0 never does.
    const outage: StageRecord[] = [];
    for (let i = 0; i < 12; i++) outage.push(seen(i, T - 10 * MIN + i * 10_000), start(i, T + i * 10_000, 'terminal_offline'));
    for (let i = 1; i < 12; i++) outage.push(end(i, T + 40 * MIN + i, 'terminal_offline'));
    const t0Last = T - 10 * MIN;
    const closeAt = t0Last + DAY + 30 * MIN; // its last activity + active_within (24 h) + quiet

    it('closes quiet after the member stops being active (last activity + active_within), saying one is still offline', () => {
      expect(run([...outage, wm(closeAt - 1)]).updates).toHaveLength(0);
      const o = run([...outage, wm(closeAt)]);
      expect(o.updates).toHaveLength(1);
      expect(o.updates[0]).toMatchObject({ alert_id: o.alerts[0]!.alert_id, resolved_at: closeAt });
      expect(o.updates[0]!.details).toMatchObject({ terminals: 12, episodes: 12, still_open: 1, last_recovery: T + 40 * MIN + 11 });
      expect(o.updates[0]!.summary).toContain('1 terminal still offline or inside a sync episode but with nothing received for over 24 h');
      expect(o.updates[0]!.summary).not.toContain('all recovered');
    });

    it('an incident an older version left with no close time (close_due null while a member stayed open) gets one at restore', () => {
      const a = createStageCore({ partitions: 1, config: defaultRulesConfig() });
      a.apply([...outage, wm(T + 2 * 60 * MIN)]);
      const snap = new Map(a.takeChanges().map(([k, v]) => [k, JSON.parse(JSON.stringify(v)) as unknown]));
      const core = snap.get('core') as { incident: { close_due: number | null } };
      expect(core.incident.close_due).toBe(closeAt);
      core.incident.close_due = null; // as the version before this fix wrote it
      const b = createStageCore({ partitions: 1, config: defaultRulesConfig() });
      b.restore(snap);
      const o = b.apply([wm(closeAt)]);
      expect(o.updates.map((u) => [u.rule, u.resolved_at])).toEqual([['sync_incident', closeAt]]);
    });

    it('after a change of quiet, a restored stage closes the incident when the live one does (the stored close time is kept)', () => {
      const longerQuiet = (): RulesConfig => {
        const d = defaultRulesConfig();
        return { ...d, stage: { ...d.stage, sync_incident: { ...d.stage.sync_incident, quiet: 120 * MIN } } };
      };
      const closeOf = (restart: boolean): number | undefined => {
        let core = createStageCore({ partitions: 1, config: defaultRulesConfig() });
        core.apply([...outage, wm(T + 2 * 60 * MIN)]);
        core.setConfig(longerQuiet());
        if (restart) {
          const snap = new Map(core.takeChanges().map(([k, v]) => [k, JSON.parse(JSON.stringify(v)) as unknown]));
          core = createStageCore({ partitions: 1, config: longerQuiet() });
          core.restore(snap);
        }
        return core.apply([wm(closeAt + 200 * MIN)]).updates.find((u) => u.rule === 'sync_incident')?.resolved_at;
      };
      expect(closeOf(false)).toBeDefined();
      expect(closeOf(true)).toBe(closeOf(false));
    });

    it('a week later an unrelated outage opens its own incident: its notice goes out, its notifications are suppressed under its id', () => {
      const W = T + 7 * DAY;
      const later: StageRecord[] = [];
      for (let i = 20; i < 35; i++) later.push(seen(i, W - 5 * MIN), start(i, W + i * 1000), notify(i, W + i * 1000));
      const o = run([...outage, ...later, wm(W + 60 * MIN)]);
      const incidents = o.alerts.filter((a) => a.rule === 'sync_incident');
      expect(incidents).toHaveLength(2);
      expect(incidents[1]!.detected_at).toBe(W + 29 * 1000); // the 10th terminal of the new outage
      expect(o.actions.filter((a) => a.kind === 'NOTIFY_ACQUIRER').map((a) => a.alert_id)).toEqual(incidents.map((a) => a.alert_id));
      const suppressed = o.decisions.filter((d) => d.decision === 'suppressed');
      expect(suppressed).toHaveLength(6); // T29..T34, after the new incident opened
      expect(suppressed.every((d) => d.incident_id === incidents[1]!.alert_id)).toBe(true);
      expect(o.memberships.filter((m) => m.incident_id === incidents[0]!.alert_id)).toHaveLength(12);
    });

    it('activity of a member still inside its episode keeps it holding the incident open (recomputed at each activity)', () => {
      // T0 is in a sync episode that has not ended (no end record), but keeps being heard from until +5 h.
      const recs = [...outage, seen(0, T + 5 * 60 * MIN)];
      expect(run([...recs, wm(T + 5 * 60 * MIN + DAY + 30 * MIN - 1)]).updates).toHaveLength(0);
      expect(run([...recs, wm(T + 5 * 60 * MIN + DAY + 30 * MIN)]).updates[0]).toMatchObject({ resolved_at: T + 5 * 60 * MIN + DAY + 30 * MIN });
    });

    it('when the last active member recovers, a member inactive for longer still decides the close, also after a restore', () => {
      // T1 stays offline with T0 and is heard from at +2 h (its episode still open), then recovers at +3 h:
      // the close falls back to T0's last activity + active_within, which only a restored stage that
      // rebuilt its members' activity gets right.
      const recs: StageRecord[] = [];
      for (let i = 0; i < 12; i++) recs.push(seen(i, T - 10 * MIN + i * 10_000), start(i, T + i * 10_000, 'terminal_offline'));
      for (let i = 2; i < 12; i++) recs.push(end(i, T + 40 * MIN + i, 'terminal_offline'));
      recs.push(seen(1, T + 2 * 60 * MIN), wm(T + 2 * 60 * MIN + 1));
      const split = recs.length;
      recs.push(end(1, T + 3 * 60 * MIN, 'terminal_offline'), wm(T + 2 * DAY));
      const whole = run(recs);
      expect(whole.updates).toHaveLength(1);
      expect(whole.updates[0]).toMatchObject({ resolved_at: closeAt });
      expect(whole.updates[0]!.details).toMatchObject({ still_open: 1, last_recovery: T + 3 * 60 * MIN });
      const a = createStageCore({ partitions: 1, config: defaultRulesConfig() });
      const first = a.apply(recs.slice(0, split));
      const state = new Map(a.takeChanges().map(([k, v]) => [k, JSON.parse(JSON.stringify(v)) as unknown]));
      const b = createStageCore({ partitions: 1, config: defaultRulesConfig() });
      b.restore(state);
      const rest = b.apply(recs.slice(split));
      const fin = b.flush();
      expect([...first.updates, ...rest.updates, ...fin.updates]).toEqual(whole.updates);
    });

    it('while sync_incident is disabled, a start does not join the open incident: no membership, its notification is issued', () => {
      const c = defaultRulesConfig();
      const core = createStageCore({ partitions: 1, config: c });
      const o1 = core.apply([...outage.slice(0, 24), wm(T + 5 * MIN)]);
      expect(o1.alerts.map((a) => a.rule)).toEqual(['sync_incident']);
      core.setConfig({ ...c, version: c.version + 1, stage: { ...c.stage, sync_incident: { ...c.stage.sync_incident, enabled: false } } });
      const o2 = core.apply([seen(50, T + 5 * MIN), start(50, T + 6 * MIN), notify(50, T + 6 * MIN), wm(T + 10 * MIN)]);
      expect(o2.memberships).toEqual([]);
      expect(o2.decisions.map((d) => [d.terminal_id, d.decision])).toEqual([['T50', 'issued']]);
      expect(core.stats()).toMatchObject({ incidentOpen: true, incidentTerminals: 12 });
    });
  });

  it('the threshold grows with the active fleet (min_share)', () => {
    const active = Array.from({ length: 400 }, (_, i) => seen(i, T - 60 * MIN + i));
    const starts = Array.from({ length: 19 }, (_, i) => start(i, T + i * 10_000));
    expect(run([...active, ...starts, wm(T + 60 * MIN)]).alerts).toHaveLength(0); // needs 20 = 5 % of 400
    expect(run([...active, ...starts, start(19, T + 200_000), wm(T + 60 * MIN)]).alerts[0]!.details).toMatchObject({ threshold: 20, active_terminals: 400 });
  });

  it('counts a terminal active exactly while its last activity is within active_within (24 h), not by the hour', () => {
    const H = 60 * MIN;
    const D = Date.UTC(2025, 0, 5); // midnight; the outage is the next day
    const tracker = createActivityTracker();
    const background: StageRecord[] = [];
    // 400 terminals sent something at 00:10 and last at 00:50, then nothing.
    for (let i = 0; i < 400; i++) {
      background.push(tracker.seen(0, `B${i}`, `MB${i}`, D + 10 * MIN)!);
      expect(tracker.seen(0, `B${i}`, `MB${i}`, D + 50 * MIN)).toBeNull(); // same hour: nothing at once
    }
    // The hour ends: each terminal's close carries its last activity, once.
    tracker.closes(0, D + H + MIN, D + H + MIN, background);
    expect(background).toHaveLength(800);
    expect(background[400]).toMatchObject({ type: 'seen', terminal_id: 'B0', bucket: Math.floor(D / H), last: D + 50 * MIN, time: D + H + MIN });
    const more: StageRecord[] = [];
    tracker.closes(0, D + 2 * H, D + 2 * H, more);
    expect(more).toEqual([]);
    const outage = (at: number): StageRecord[] => [
      ...background,
      ...Array.from({ length: 20 }, (_, i) => seen(i, at - 10 * MIN)),
      ...Array.from({ length: 20 }, (_, i) => start(i, at + i * 1000)),
      wm(at + H),
    ];
    // At 00:30 the next day the 400 sent something 23 h 40 min ago: 420 active, threshold 21, 20 starts open nothing.
    expect(run(outage(D + 24 * H + 30 * MIN)).alerts).toHaveLength(0);
    // At 00:55 their last activity (00:50) is 24 h 5 min old: 20 active, threshold 10 (by the hour they would still count).
    expect(run(outage(D + 24 * H + 55 * MIN)).alerts[0]!.details).toMatchObject({ threshold: 10, active_terminals: 20 });
  });

  it('closes the hour a terminal leaves as soon as it leaves, with its last activity in it', () => {
    const H = 60 * MIN;
    const tracker = createActivityTracker();
    const out: StageRecord[] = [];
    expect(tracker.seen(3, 'T1', 'M1', T + 5 * MIN)).toMatchObject({ time: T + 5 * MIN, bucket: Math.floor(T / H) });
    expect(tracker.seen(3, 'T1', 'M1', T + 40 * MIN)).toBeNull();
    expect(tracker.seen(3, 'T1', 'M1', T + 30 * MIN)).toBeNull(); // out of order, same hour: not the last
    expect(tracker.seen(3, 'T1', 'M1', T + H + MIN)).toMatchObject({ time: T + H + MIN, bucket: Math.floor(T / H) + 1 });
    expect(tracker.seen(3, 'T1', 'M1', T + 50 * MIN)).toBeNull(); // an hour it left: published already
    tracker.closes(3, T + H + 2 * MIN, T + H + 2 * MIN, out);
    expect(out).toEqual([{ type: 'seen', partition: 3, time: T + H + 2 * MIN, terminal_id: 'T1', merchant_id: 'M1', bucket: Math.floor(T / H), last: T + 40 * MIN }]);
  });

  it('nothing happens until every partition has a watermark past it', () => {
    const core = createStageCore({ partitions: 2, config: defaultRulesConfig() });
    const recs = Array.from({ length: 10 }, (_, i) => start(i, T + i * 1000));
    expect(core.apply([...recs, wm(T + MIN)]).alerts).toHaveLength(0);
    expect(core.apply([{ type: 'watermark', partition: 1, time: T + 9 * 1000 }]).alerts).toHaveLength(0); // not past the 10th
    expect(core.apply([{ type: 'watermark', partition: 1, time: T + 9 * 1000 + 1 }]).alerts).toHaveLength(1);
  });

  it('end marks (replay): records at the last watermark apply once every partition at it has ended, as the backtest flush applies them', () => {
    const recs = Array.from({ length: 10 }, (_, i) => ({ ...start(i, T + i * MIN), partition: i % 2 }));
    const last = T + 9 * MIN;
    const core = createStageCore({ partitions: 2, config: defaultRulesConfig() });
    // Watermarks at the last start's time: it is not applied (a partition may still publish at its watermark).
    expect(core.apply([...recs, { type: 'watermark', partition: 0, time: last }, { type: 'watermark', partition: 1, time: last }]).alerts).toEqual([]);
    // One partition ended: still waiting for the other.
    expect(core.apply([{ type: 'watermark', partition: 0, time: last, end: true }]).alerts).toEqual([]);
    const o = core.apply([{ type: 'watermark', partition: 1, time: last, end: true }]);
    expect(o.alerts.map((a) => [a.rule, a.detected_at])).toEqual([['sync_incident', last]]);
    expect(core.flush().alerts).toEqual([]);
  });

  it('an idle partition holds nothing back', () => {
    const core = createStageCore({ partitions: 2, config: defaultRulesConfig() });
    const recs = Array.from({ length: 10 }, (_, i) => start(i, T + i * 1000));
    expect(core.apply([...recs, wm(T + MIN), { type: 'watermark', partition: 1, time: 0, idle: true }]).alerts).toHaveLength(1);
  });
});

describe('governor', () => {
  it('suppresses NOTIFY_MERCHANT of the incident terminals while it is open, with the incident id', () => {
    const recs: StageRecord[] = [];
    for (let i = 0; i < 12; i++) recs.push(start(i, T + i * 1000), action(i, T + i * 1000, 'NOTIFY_MERCHANT', 'sync_lag'));
    recs.push(action(3, T + 20_000, 'NOTIFY_MERCHANT', 'upload_backlog'), action(3, T + 20_000, 'NOTIFY_MERCHANT', 'refund_velocity'), action(50, T + 20_000, 'NOTIFY_MERCHANT', 'sequence_gap'));
    const o = run([...recs, wm(T + 60 * MIN)]);
    const inc = o.alerts[0]!.alert_id;
    const byDecision = (d: string) => o.decisions.filter((x) => x.decision === d);
    // T0..T8 before the incident, T50 not in it, refund_velocity not a sync rule; + the acquirer notice.
    expect(byDecision('issued').map((d) => `${d.terminal_id}:${d.rule}`)).toEqual(['T0:sync_lag', 'T1:sync_lag', 'T2:sync_lag', 'T3:sync_lag', 'T4:sync_lag', 'T5:sync_lag', 'T6:sync_lag', 'T7:sync_lag', 'T8:sync_lag', '*:sync_incident', 'T3:refund_velocity', 'T50:sequence_gap']);
    expect(byDecision('suppressed').map((d) => `${d.terminal_id}:${d.rule}`)).toEqual(['T9:sync_lag', 'T10:sync_lag', 'T11:sync_lag', 'T3:upload_backlog']);
    expect(byDecision('suppressed').every((d) => d.incident_id === inc && d.final_action_id === null)).toBe(true);
  });

  it('caps freezes per window fleet-wide and per merchant; one circuit alert per window, closed with the count held back', () => {
    const c = defaultRulesConfig();
    const recs: StageRecord[] = [];
    // 25 freezes at 25 merchants in the first hour, 4 at one merchant in the second hour.
    for (let i = 0; i < 25; i++) recs.push(action(i, T + i * MIN, 'FREEZE_TERMINAL', 'refund_without_sale'));
    for (let k = 0; k < 4; k++) recs.push(action(100 + k, T + 60 * MIN + k * MIN, 'FREEZE_CARD', 'refund_exceeds_sale', 'M-shop'));
    const o = run([...recs, wm(T + 180 * MIN)], c);
    const d = o.decisions;
    expect(d.filter((x) => x.decision === 'issued')).toHaveLength(20 + 3);
    expect(d.filter((x) => x.reason === 'freeze_cap_fleet')).toHaveLength(5);
    expect(d.filter((x) => x.reason === 'freeze_cap_merchant')).toHaveLength(1);
    expect(o.actions.filter((a) => a.kind === 'REVIEW_REFUND')).toHaveLength(6);
    expect(o.alerts.map((a) => a.rule)).toEqual(['freeze_circuit_open', 'freeze_circuit_open']);
    expect(o.updates.map((u) => u.details.held_back)).toEqual([5, 1]);
    expect(o.updates[0]!.resolved_at).toBe(T + 60 * MIN);
  });

  it("a late freeze from an older window does not reset the current window's counters; it is counted (here downgraded) against the current window, whose circuit it names", () => {
    const H = 60 * MIN;
    const core = createStageCore({ partitions: 1, config: defaultRulesConfig() });
    // 20 freezes at 20 merchants at 10:05-10:24: the 10:00 window's fleet cap is reached, nothing held back yet.
    const o1 = core.apply([...Array.from({ length: 20 }, (_, i) => action(i, T + H + (5 + i) * MIN, 'FREEZE_TERMINAL', 'refund_velocity')), wm(T + H + 30 * MIN)]);
    expect(o1.decisions.filter((d) => d.decision === 'issued')).toHaveLength(20);
    expect(o1.alerts).toEqual([]);
    // A freeze stamped 09:59 arrives after the stage passed 10:30 (a late record), then 10 more at 10:32-10:41.
    const o2 = core.apply([action(100, T + 59 * MIN, 'FREEZE_TERMINAL', 'refund_velocity'), wm(T + H + 31 * MIN)]);
    const o3 = core.apply([...Array.from({ length: 10 }, (_, i) => action(200 + i, T + H + (32 + i) * MIN, 'FREEZE_TERMINAL', 'refund_velocity')), wm(T + 3 * H)]);
    expect(core.stats().late).toBe(1);
    const decisions = [...o2.decisions, ...o3.decisions];
    expect(decisions.filter((d) => d.decision === 'issued')).toEqual([]);
    expect(decisions.map((d) => d.reason)).toEqual(new Array(11).fill('freeze_cap_fleet'));
    // The circuit is the 10:00 window's, opened by the late freeze, closed at 11:00 with all 11.
    expect(o2.alerts.map((a) => [a.rule, a.window_start, a.window_end])).toEqual([['freeze_circuit_open', T + H, T + 2 * H]]);
    expect([...o2.updates, ...o3.updates].map((u) => [u.alert_id, u.resolved_at, u.details.held_back])).toEqual([[o2.alerts[0]!.alert_id, T + 2 * H, 11]]);
  });
});

describe('governor and a changed freeze_window', () => {
  const H = 60 * MIN;
  const withWindow = (freeze_window: number): RulesConfig => {
    const d = defaultRulesConfig();
    return { ...d, stage: { ...d.stage, governor: { ...d.stage.governor, freeze_window } } };
  };
  const freezes = (from: number, n: number, t: number) => Array.from({ length: n }, (_, i) => action(from + i, t + i * 1000, 'FREEZE_TERMINAL', 'refund_velocity'));

  for (const restart of [false, true]) {
    it(`a longer window (10 min -> 1 h${restart ? ', across a restore' : ''}) starts a new window: the caps reset, later freezes are issued`, () => {
      let core = createStageCore({ partitions: 1, config: withWindow(10 * MIN) });
      const o1 = core.apply([...freezes(0, 21, T + 5 * MIN), wm(T + 9 * MIN)]);
      expect(o1.decisions.map((d) => d.decision).filter((d) => d === 'downgraded')).toHaveLength(1);
      if (restart) {
        const snap = new Map(core.takeChanges().map(([k, v]) => [k, JSON.parse(JSON.stringify(v)) as unknown]));
        core = createStageCore({ partitions: 1, config: withWindow(H) });
        core.restore(snap);
      } else core.setConfig(withWindow(H));
      const o2 = core.apply([...freezes(100, 5, T + 2 * H), wm(T + 2 * H + MIN)]);
      expect(o2.decisions.map((d) => d.decision)).toEqual(new Array(5).fill('issued'));
    });
  }
});

describe('changelog', () => {
  it('prunes a late kept alert in the same order with and without a restore in between', () => {
    // p2 arrives late (its time is before p1's): kept in (time, id) order, it is pruned by the
    // same stream time whether or not the stage restarted between the two phases.
    const c: RulesConfig = { ...defaultRulesConfig(), stage: { ...defaultRulesConfig().stage, sync_incident: { ...defaultRulesConfig().stage.sync_incident, min_terminals: 1, min_share: 0 } } };
    const alertRec = (t: number, term: string, id: string): StageRecord => ({ type: 'alert', partition: 0, time: t, rule: 'sequence_gap', alert_id: id, terminal_id: term, merchant_id: 'M' });
    const startRec = (t: number, term: string, id: string): StageRecord => ({ type: 'start', partition: 0, time: t, rule: 'sync_lag', alert_id: id, terminal_id: term, merchant_id: 'M', event_id: null });
    const seenRec = (t: number, term: string): StageRecord => ({ type: 'seen', partition: 0, time: t, terminal_id: term, merchant_id: 'M', bucket: Math.floor(t / 3_600_000) });
    const phase1: StageRecord[][] = [[alertRec(T + 100 * MIN, 'A', 'p1'), wm(T + 101 * MIN)], [alertRec(T + 50 * MIN, 'B', 'p2'), wm(T + 102 * MIN)]];
    const phase2: StageRecord[][] = [[seenRec(T + 120 * MIN, 'C'), wm(T + 121 * MIN)], [startRec(T + 60 * MIN, 'B', 's1'), wm(T + 122 * MIN)]];
    const links = (restart: boolean): string[] => {
      let core = createStageCore({ partitions: 1, config: c });
      const out: string[] = [];
      const take = (o: StageOutput) => out.push(...o.memberships.map((m) => `${m.alert_id}:${m.role}`));
      for (const b of phase1) take(core.apply(b));
      const changes = core.takeChanges();
      if (restart) {
        core = createStageCore({ partitions: 1, config: c });
        core.restore(new Map(changes.map(([k, v]) => [k, JSON.parse(JSON.stringify(v)) as unknown])));
      }
      for (const b of phase2) take(core.apply(b));
      take(core.flush());
      return out;
    };
    expect(links(false)).toEqual(links(true));
    expect(links(false)).toEqual(['s1:opening']);
  });

  it('restores mid-incident and continues with the same output', () => {
    const recs: StageRecord[] = [];
    for (let i = 0; i < 12; i++) recs.push(seen(i, T + i * 1000), start(i, T + i * 1000), wm(T + i * 1000 + 1));
    for (let i = 0; i < 12; i++) recs.push(end(i, T + 40 * MIN), wm(T + 40 * MIN + 1));
    recs.push(wm(T + 200 * MIN));
    const whole = run(recs);
    const a = createStageCore({ partitions: 1, config: defaultRulesConfig() });
    const first = a.apply(recs.slice(0, 30));
    const state = new Map(a.takeChanges().map(([k, v]) => [k, JSON.parse(JSON.stringify(v)) as unknown]));
    expect([...state.keys()].some((k) => k.startsWith('act:'))).toBe(true);
    const b = createStageCore({ partitions: 1, config: defaultRulesConfig() });
    b.restore(state);
    expect(b.stats()).toMatchObject({ incidentOpen: true, activeTerminalsSeen: 10 });
    const rest = b.apply(recs.slice(30));
    const fin = b.flush();
    expect([...first.alerts, ...rest.alerts, ...fin.alerts]).toEqual(whole.alerts);
    expect([...first.updates, ...rest.updates, ...fin.updates]).toEqual(whole.updates);
  });
  it("restores an older stage's seen:<terminal> (an hour number) as that hour's end, and replaces it by act:<terminal>", () => {
    const H = 60 * MIN;
    const hour = Math.floor(T / H);
    const core = createStageCore({ partitions: 1, config: defaultRulesConfig() });
    core.restore(new Map<string, unknown>([['seen:T1', hour], ['seen:T3', hour], ['act:T2', T + 5 * MIN]]));
    expect(core.stats()).toMatchObject({ activeTerminalsSeen: 3 });
    // T1 is active in the next hour; T3 at 09:10, before the end of the hour its old key stands for; T2 later.
    core.apply([seen(3, T + 10 * MIN), seen(2, T + 20 * MIN), seen(1, T + 70 * MIN), wm(T + 80 * MIN)]);
    const changes = new Map(core.takeChanges());
    expect(changes.get('act:T1')).toBe(T + 70 * MIN);
    expect(changes.get('seen:T1')).toBeNull(); // the old key's tombstone, once its exact value is written
    expect(changes.get('act:T2')).toBe(T + 20 * MIN);
    expect(changes.has('seen:T2')).toBe(false);
    expect(changes.has('act:T3') || changes.has('seen:T3')).toBe(false); // 09:10 is not later than 09:59:59.999
  });
});
