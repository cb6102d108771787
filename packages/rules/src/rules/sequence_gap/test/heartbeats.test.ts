// sequence_gap with heartbeats: a missing seq the terminal still holds in its queue is pending upload,
// not lost: its gap waits until a heartbeat shows the queue empty (or the number arrives, or the
// terminal is forgotten for idleness: dropped, no alert). Details of a heartbeating terminal's alert
// say which (pending_upload, held_by_terminal, lost_by_heartbeat).
import { describe, expect, it } from 'vitest';
import { RULE_IDS, createRuleEngine, parseRulesConfig } from '../../../index.js';
import { HOUR, MIN, SEC, Scenario, T0 } from '../../../../test/helpers/builder.js';
import { runEvents, runWithRestoreAt } from '../../../../test/helpers/run.js';

const config = parseRulesConfig({ rules: Object.fromEntries(RULE_IDS.filter((r) => r !== 'sequence_gap').map((r) => [r, { enabled: false }])) });

/**
 * T1 made seqs 1-20; 1-3 and then 20 arrived on time, 4-19 sit in its queue and upload one every
 * 3 min from 5 min on (48 min, longer than the 30 min timeout); seq `lost` (if any) is never uploaded.
 * Heartbeats every 60 s report the queue.
 */
function slowUpload(s: Scenario, o: { heartbeats: boolean; lost?: number; beatUntil?: number; end?: number }) {
  for (let seq = 1; seq <= 3; seq++) s.sale({ at: seq * SEC, seq, card: `c${seq}` });
  const high = s.sale({ at: 4 * MIN, seq: 20, card: 'c20' });
  const uploads: { at: number; seq: number }[] = [];
  let t = 5 * MIN;
  for (let seq = 4; seq <= 19; seq++, t += 3 * MIN) if (seq !== o.lost) uploads.push({ at: t, seq });
  const queueAt = (at: number): number => uploads.filter((u) => u.at > at).length;
  const end = o.end ?? 70 * MIN;
  type Ev = { recv: number; add: () => void };
  const evs: Ev[] = uploads.map((u) => ({ recv: u.at, add: () => s.sale({ at: u.seq * 10 * SEC, recvAt: u.at, seq: u.seq, card: `c${u.seq}` }) }));
  if (o.heartbeats) for (let at = 30 * SEC; at < Math.min(end, o.beatUntil ?? end); at += MIN) evs.push({ recv: at + 500, add: () => void s.heartbeat({ at, lastSeq: 20, queue: queueAt(at + 500) }) });
  evs.push({ recv: end, add: () => s.sale({ at: end - 1500, seq: 21, card: 'c21' }) }); // moves the clock to the end
  evs.sort((a, b) => a.recv - b.recv).forEach((e) => e.add());
  return { high };
}

describe('sequence_gap with heartbeats', () => {
  it('without heartbeats a slow upload fires at the timeout (as before)', () => {
    const s = new Scenario();
    slowUpload(s, { heartbeats: false });
    const out = runEvents(createRuleEngine(config), s.events);
    expect(out.alerts).toHaveLength(1);
    // Due 30 min after seq 20 arrived (34m1.5s): 4-13 have arrived by then (the 3 min pace), 14-19 not.
    expect(out.alerts[0]!.details).toEqual({ missing_from: 14, missing_to: 19, missing_count: 6, low_seq: 3, high_seq: 20, timeout_ms: 30 * MIN });
  });

  it('heartbeats prove the missing seqs pending upload: the gap waits and fills, no alert', () => {
    const s = new Scenario();
    slowUpload(s, { heartbeats: true });
    expect(runEvents(createRuleEngine(config), s.events).alerts).toEqual([]);
  });

  it('a seq the terminal never uploads fires once its queue is empty, details say it was held (not pending any more)', () => {
    const s = new Scenario();
    slowUpload(s, { heartbeats: true, lost: 9 });
    const out = runEvents(createRuleEngine(config), s.events);
    expect(out.alerts).toHaveLength(1);
    const a = out.alerts[0]!;
    expect(a.details).toEqual({ missing_from: 9, missing_to: 9, missing_count: 1, low_seq: 3, high_seq: 20, timeout_ms: 30 * MIN, pending_upload: 0, held_by_terminal: 1, lost_by_heartbeat: 1 });
    // The last upload (seq 19) at 5 min + 15 * 3 min = 50 min; the first heartbeat after it, with an empty queue: 50m30.5s.
    expect(a.detected_at - T0).toBe(50 * MIN + 30 * SEC + 500);
  });

  it('when the heartbeats stop, a pending gap does not fire at all: the uploads that come fill it, no alert', () => {
    const s = new Scenario();
    slowUpload(s, { heartbeats: true, beatUntil: 20 * MIN });
    expect(runEvents(createRuleEngine(config), s.events).alerts).toEqual([]);
  });

  it('a pending gap of a terminal that goes silent waits (no alert however long), fires at the first heartbeat back with an empty queue, as lost', () => {
    const s = new Scenario();
    slowUpload(s, { heartbeats: true, lost: 9, beatUntil: 20 * MIN, end: 60 * MIN });
    // Silent (no heartbeat) from 20 min; 4-19 but 9 arrive by 50 min; the clock goes on to 5 h.
    const e = createRuleEngine(config);
    const out = runEvents(e, s.events);
    expect(out.alerts).toEqual([]);
    expect(e.advanceClock(T0 + 5 * HOUR).alerts).toEqual([]);
    expect(e.stats().pendingGaps).toBe(1);
    const back = s.heartbeat({ at: 5 * HOUR, lastSeq: 21, queue: 0 });
    const o = e.onHeartbeat(back);
    expect(o.alerts).toHaveLength(1);
    expect(o.alerts[0]!.detected_at).toBe(back.received_time);
    expect(o.alerts[0]!.details).toEqual({ missing_from: 9, missing_to: 9, missing_count: 1, low_seq: 3, high_seq: 20, timeout_ms: 30 * MIN, pending_upload: 0, held_by_terminal: 1, lost_by_heartbeat: 1 });
  });

  it('a pending gap of a terminal that never comes back is dropped with it after engine.terminal_idle_ttl, without an alert (nothing leaks)', () => {
    const s = new Scenario();
    slowUpload(s, { heartbeats: true, lost: 9, beatUntil: 20 * MIN, end: 60 * MIN });
    const e = createRuleEngine(config);
    expect(runEvents(e, s.events).alerts).toEqual([]);
    const ttl = config.engine.terminal_idle_ttl;
    // Held while pending? No: a pending gap does not keep its terminal; at the TTL both go, silently.
    expect(e.advanceClock(T0 + 60 * MIN + ttl - MIN).alerts).toEqual([]);
    expect(e.stats()).toMatchObject({ terminals: 1, pendingGaps: 1 });
    expect(e.advanceClock(T0 + 60 * MIN + ttl + HOUR).alerts).toEqual([]);
    expect(e.stats()).toMatchObject({ terminals: 0, pendingGaps: 0 });
  });

  it('a heartbeating terminal whose queue is reported empty proves a gap lost: the details say so (never held); a terminal that never heartbeats keeps the base details', () => {
    const s = new Scenario();
    for (const terminal of ['T1', 'T2', 'T3']) {
      s.sale({ at: 0, terminal, seq: 1 });
      s.sale({ at: 10 * SEC, terminal, seq: 5 }); // 2-4 missing, due at 30m11.5s
    }
    for (let at = MIN; at < 40 * MIN; at += MIN) {
      s.heartbeat({ at, terminal: 'T1', lastSeq: 5, queue: 0 }); // sent everything: 2-4 are lost
      s.heartbeat({ at, terminal: 'T2', lastSeq: 1, queue: 0 }); // its heartbeats lag behind the gap: they say nothing about 2-4
    }
    s.sale({ at: 45 * MIN, terminal: 'T1', seq: 6 });
    const out = runEvents(createRuleEngine(config), s.events);
    const base = { missing_from: 2, missing_to: 4, missing_count: 3, low_seq: 1, high_seq: 5, timeout_ms: 30 * MIN };
    expect(Object.fromEntries(out.alerts.map((a) => [a.terminal_id, a.details]))).toEqual({
      T1: { ...base, pending_upload: 0, held_by_terminal: 0, lost_by_heartbeat: 1 },
      T2: { ...base, pending_upload: 0, held_by_terminal: 0, lost_by_heartbeat: 0 },
      T3: base,
    });
    // Proven lost before the due time: it still fires at the due time (the numbers may be in flight).
    expect(out.alerts.map((a) => a.detected_at - T0)).toEqual([30 * MIN + 11_500, 30 * MIN + 11_500, 30 * MIN + 11_500]);
    expect(out.alerts.find((a) => a.terminal_id === 'T1')!.summary).toContain('lost, not pending upload');
  });

  it('once a heartbeat proved a gap lost, later queued transactions do not make it pending again', () => {
    const s = new Scenario();
    s.sale({ at: 0, seq: 1 });
    s.sale({ at: 10 * SEC, seq: 5 });
    s.heartbeat({ at: MIN, lastSeq: 5, queue: 0 }); // 2-4 lost
    for (let at = 2 * MIN; at < 40 * MIN; at += MIN) s.heartbeat({ at, lastSeq: 6 + at / MIN, queue: at / MIN }); // offline again, queueing newer seqs
    const out = runEvents(createRuleEngine(config), s.events);
    expect(out.alerts.map((a) => [a.detected_at - T0, a.details.lost_by_heartbeat, a.details.held_by_terminal])).toEqual([[30 * MIN + 11_500, 1, 0]]);
  });

  it('restored from the entity changelog at any point while a gap is pending without heartbeats: the same alerts, and the same drop at the idle TTL', () => {
    const s = new Scenario();
    slowUpload(s, { heartbeats: true, lost: 9, beatUntil: 20 * MIN, end: 60 * MIN });
    s.heartbeat({ at: 3 * HOUR, lastSeq: 21, queue: 0 });
    s.sale({ at: 3 * HOUR + MIN, seq: 25 }); // a new gap 22-24, held below, then never heard of again
    s.heartbeat({ at: 3 * HOUR + 2 * MIN, lastSeq: 25, queue: 3 });
    const events = s.events;
    const expected = runEvents(createRuleEngine(config), events);
    expect(expected.alerts.map((a) => a.details.missing_from)).toEqual([9]);
    for (let cut = 1; cut < events.length; cut += 3) {
      const out = runWithRestoreAt(config, events, cut);
      expect(out.alerts).toEqual(expected.alerts);
    }
  });

  it('restored from the entity changelog at any point: the same alerts', () => {
    const s = new Scenario();
    slowUpload(s, { heartbeats: true, lost: 9 });
    const events = s.events;
    const expected = runEvents(createRuleEngine(config), events);
    for (let cut = 1; cut < events.length; cut += 2) {
      const out = runWithRestoreAt(config, events, cut);
      expect(out.alerts).toEqual(expected.alerts);
    }
  });
});
