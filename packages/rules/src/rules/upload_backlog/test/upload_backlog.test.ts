import { alertUpdateId } from '@tillwatch/schemas';
import { describe, expect, it } from 'vitest';
import { RULE_IDS, createRuleEngine, parseRulesConfig, type RulesConfig } from '../../../index.js';
import { MIN, SEC, Scenario } from '../../../../test/helpers/builder.js';
import { runEvents, runWithRestoreAt } from '../../../../test/helpers/run.js';

const only = (p: Record<string, unknown> = {}): RulesConfig =>
  parseRulesConfig({ rules: { ...Object.fromEntries(RULE_IDS.filter((r) => r !== 'upload_backlog').map((r) => [r, { enabled: false }])), upload_backlog: p } });

describe('upload_backlog', () => {
  it('config: defaults min_queue 5, stuck_for 10m; errors with their path', () => {
    expect(parseRulesConfig({}).rules.upload_backlog).toEqual({ enabled: true, severity: 'medium', mode: 'active', min_queue: 5, stuck_for: 10 * MIN });
    expect(parseRulesConfig({ rules: { upload_backlog: { min_queue: 3, stuck_for: '5m' } } }).rules.upload_backlog).toMatchObject({ min_queue: 3, stuck_for: 5 * MIN });
    expect(() => parseRulesConfig({ rules: { upload_backlog: { min_queue: 0 } } })).toThrow('rules.upload_backlog.min_queue');
    expect(() => parseRulesConfig({ rules: { upload_backlog: { stuck_for: 0 } } })).toThrow('rules.upload_backlog.stuck_for');
  });

  it('a queue >= min_queue that does not shrink for stuck_for fires once at the heartbeat proving it; closed when it falls below min_queue', () => {
    const s = new Scenario();
    s.heartbeat({ at: 0, lastSeq: 0 });
    for (let j = 1; j <= 3; j++) s.sale({ at: j * MIN, seq: j });
    const q = [0, 2, 5, 6, 6, 8, 8, 9, 10, 11, 12, 13, 14, 15, 15, 15, 9, 4, 0]; // heartbeats each minute from 4 min
    const hs = q.map((queue, i) => s.heartbeat({ at: (4 + i) * MIN, queue, lastSeq: 3 + Math.max(queue, i > 15 ? 15 : 0) }));
    const out = runEvents(createRuleEngine(only()), s.events);
    // The backlog reached 5 at hs[2] (6 min; last_seq 8, 5 ahead of seq 3); not shrinking 10 min later: hs[12].
    expect(out.alerts.map((a) => a.event_ids)).toEqual([[hs[2]!.event_id, hs[12]!.event_id]]);
    const a = out.alerts[0]!;
    expect(a.detected_at).toBe(hs[12]!.received_time);
    expect(a.details).toEqual({ queue_depth: 14, last_seq: 17, seq_ahead: 14, backlog: 14, min_queue: 5, stuck_ms: 10 * MIN, stuck_for_ms: 10 * MIN, synced_seq: 3 });
    expect(out.actions.map((x) => x.kind)).toEqual(['NOTIFY_MERCHANT']);
    // hs[17]: queue 4, but last_seq 18 is 15 ahead of seq 3 (nothing uploaded): still a backlog. hs[18]: queue 0 but 15 ahead. Open.
    expect(out.updates).toEqual([]);
    // The upload arrives: seqs 4..18, then a heartbeat with an empty queue closes it.
    for (let seq = 4; seq <= 18; seq++) s.sale({ at: seq * 20 * SEC, recvAt: 23 * MIN + seq * SEC, seq });
    const done = s.heartbeat({ at: 24 * MIN, queue: 0, lastSeq: 18 });
    const all = runEvents(createRuleEngine(only()), s.events);
    expect(all.updates).toEqual([
      expect.objectContaining({
        update_id: alertUpdateId(a.alert_id, 'auto_resolved', 'episode_ended', [done.event_id]),
        alert_id: a.alert_id,
        resolution: 'episode_ended',
        resolved_by_event_ids: [done.event_id],
        resolved_at: done.received_time,
        details: { duration_ms: done.received_time - hs[2]!.received_time, max_backlog: 15, backlog: 0, queue_depth: 0 },
      }),
    ]);
  });

  it('seqs received before the first heartbeat count as synced (issue 10): last_seq 8 ahead of seq 1 fires at stuck_for, and closes when the seqs arrive', () => {
    const s = new Scenario();
    s.sale({ at: 0, seq: 1 });
    const hs = Array.from({ length: 12 }, (_, i) => s.heartbeat({ at: (1 + i) * MIN, lastSeq: 9, queue: 0 }));
    for (let seq = 2; seq <= 9; seq++) s.sale({ at: 13 * MIN, seq, lag: 0 });
    const close = s.heartbeat({ at: 14 * MIN, lastSeq: 9, queue: 0 });
    const out = runEvents(createRuleEngine(only()), s.events);
    expect(out.alerts.map((a) => a.event_ids)).toEqual([[hs[0]!.event_id, hs[10]!.event_id]]);
    expect(out.updates.map((u) => u.resolved_by_event_ids)).toEqual([[close.event_id]]);
  });

  it('a queue that keeps shrinking (an upload in progress) is not stuck; nor one below min_queue however long', () => {
    const s = new Scenario();
    for (let i = 0; i <= 30; i++) s.heartbeat({ at: i * MIN, queue: 40 - i, lastSeq: 0 }); // -1 per minute for 30 min
    for (let i = 0; i <= 60; i++) s.heartbeat({ at: i * MIN, queue: 4, terminal: 'T2', lastSeq: 0 });
    const out = runEvents(createRuleEngine(only()), [...s.events].sort((a, b) => a.received_time - b.received_time));
    expect(out.alerts).toEqual([]);
    // A shrink restarts the clock: stuck at 10 after 30 min of shrinking fires 10 min later.
    const s2 = new Scenario();
    const hs = [20, 18, 15, 12, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10].map((queue, i) => s2.heartbeat({ at: i * MIN, queue, lastSeq: 0 }));
    const out2 = runEvents(createRuleEngine(only()), s2.events);
    expect(out2.alerts.map((a) => a.event_ids)).toEqual([[hs[4]!.event_id, hs[14]!.event_id]]);
  });

  it('restored from the entity changelog at any point: the same alerts and updates', () => {
    const s = new Scenario();
    s.sale({ at: 0, seq: 10 });
    for (let i = 1; i <= 40; i++) {
      const queue = i < 25 ? Math.min(i, 12) : 0;
      s.heartbeat({ at: i * MIN, queue, lastSeq: i < 25 ? 10 + queue : 22 });
      if (i === 24) for (let seq = 11; seq <= 22; seq++) s.sale({ at: (seq - 10) * MIN, recvAt: 24 * MIN + 30 * SEC, seq });
    }
    const events = s.events;
    const expected = runEvents(createRuleEngine(only()), events);
    expect([expected.alerts.length, expected.updates.length]).toEqual([1, 1]);
    for (let cut = 1; cut < events.length; cut += 2) {
      const out = runWithRestoreAt(only(), events, cut);
      expect([out.alerts, out.updates]).toEqual([expected.alerts, expected.updates]);
    }
  });
});
