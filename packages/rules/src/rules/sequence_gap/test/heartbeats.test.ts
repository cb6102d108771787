// sequence_gap with heartbeats: a missing seq the terminal still holds in its queue is pending upload,
// not lost: its gap waits until the queue is empty (or no heartbeat has proved it for `timeout`).
import { describe, expect, it } from 'vitest';
import { RULE_IDS, createRuleEngine, parseRulesConfig } from '../../../index.js';
import { MIN, SEC, Scenario, T0 } from '../../../../test/helpers/builder.js';
import { runEvents, runWithRestoreAt } from '../../../../test/helpers/run.js';

const config = parseRulesConfig({ rules: Object.fromEntries(RULE_IDS.filter((r) => r !== 'sequence_gap').map((r) => [r, { enabled: false }])) });

/**
 * T1 made seqs 1-20; 1-3 and then 20 arrived on time, 4-19 sit in its queue and upload one every
 * 3 min from 5 min on (48 min, longer than the 30 min timeout); seq `lost` (if any) is never uploaded.
 * Heartbeats every 60 s report the queue.
 */
function slowUpload(s: Scenario, o: { heartbeats: boolean; lost?: number; beatUntil?: number }) {
  for (let seq = 1; seq <= 3; seq++) s.sale({ at: seq * SEC, seq, card: `c${seq}` });
  const high = s.sale({ at: 4 * MIN, seq: 20, card: 'c20' });
  const uploads: { at: number; seq: number }[] = [];
  let t = 5 * MIN;
  for (let seq = 4; seq <= 19; seq++, t += 3 * MIN) if (seq !== o.lost) uploads.push({ at: t, seq });
  const queueAt = (at: number): number => uploads.filter((u) => u.at > at).length;
  const end = 70 * MIN;
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
    expect(a.details).toEqual({ missing_from: 9, missing_to: 9, missing_count: 1, low_seq: 3, high_seq: 20, timeout_ms: 30 * MIN, pending_upload: 0, held_by_terminal: 1 });
    // The last upload (seq 19) at 5 min + 15 * 3 min = 50 min; the first heartbeat after it, with an empty queue: 50m30.5s.
    expect(a.detected_at - T0).toBe(50 * MIN + 30 * SEC + 500);
  });

  it('when the heartbeats stop, a pending gap fires `timeout` after the last one that proved it, saying pending_upload 1', () => {
    const s = new Scenario();
    slowUpload(s, { heartbeats: true, beatUntil: 20 * MIN });
    const out = runEvents(createRuleEngine(config), s.events);
    expect(out.alerts).toHaveLength(1);
    const a = out.alerts[0]!;
    expect(a.details).toMatchObject({ pending_upload: 1, held_by_terminal: 1 });
    expect(a.detected_at - T0).toBe(19 * MIN + 30 * SEC + 500 + 30 * MIN);
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
