import { describe, expect, it } from 'vitest';
import { createAlertIndex, type IndexedAlert } from '../src/read-model/alert-index.js';
import { currentStatus, mergeHistory, statusCondition, type AlertStatus } from '../src/lifecycle.js';

describe('alert lifecycle (pure)', () => {
  it('an auto-resolution outranks triage in the read model index, before or after it; the earliest resolution stands', () => {
    const index = createAlertIndex({ maxAlerts: 10 });
    const a: IndexedAlert = { alert_id: 'a', rule: 'r', severity: 'low', terminal_id: 'T', merchant_id: 'M', detected_at: 1000 };
    index.add(a);
    const set = (status: AlertStatus, at: number) => index.triage('a', { status, actor: status === 'auto_resolved' ? 'detector' : 'ana', at });
    const listed = (s: AlertStatus) => index.list({ statuses: [s] }, undefined, 5)!.positions.length > 0;
    set('acknowledged', 10);
    set('auto_resolved', 20);
    expect(index.triageOf('a')).toMatchObject({ status: 'auto_resolved', at: 20 });
    set('false_positive', 30); // later triage: the events settled it, status stays
    expect(index.triageOf('a')?.status).toBe('auto_resolved');
    set('auto_resolved', 15); // an earlier copy of a resolution (re-fired live with another clock)
    expect(index.triageOf('a')?.at).toBe(15);
    set('auto_resolved', 40);
    expect(index.triageOf('a')?.at).toBe(15);
    expect(listed('auto_resolved')).toBe(true);
    expect(listed('open')).toBe(false);
    expect(listed('false_positive')).toBe(false);
  });

  it('merges history by time, triage before an update at the same millisecond', () => {
    const h = mergeHistory(
      [{ status: 'acknowledged', actor: 'ana', note: '', at: 5 }, { status: 'resolved', actor: 'ana', note: '', at: 9 }],
      [{ status: 'auto_resolved', actor: 'detector', note: 'refunded', at: 5, update_id: 'u1' }, { status: 'auto_resolved', actor: 'detector', note: 'x', at: 1, update_id: 'u0' }],
    );
    expect(h.map((e) => [e.at, e.source ?? 'triage'])).toEqual([[1, 'update'], [5, 'triage'], [5, 'update'], [9, 'triage']]);
    expect(currentStatus('resolved', true)).toBe('auto_resolved');
    expect(currentStatus(undefined, false)).toBe('open');
  });

  it('status conditions: open leaves auto-resolved out; auto_resolved alone needs no triage statuses', () => {
    const open = statusCondition(['open'], 'T', 'R');
    expect(open.sql).toBe('(((alert_id NOT IN (T NOT IN {statuses:Array(String)})) AND alert_id NOT IN (R)))');
    expect(open.params).toEqual({ statuses: ['open'] });
    const auto = statusCondition(['auto_resolved'], 'T', 'R');
    expect(auto.sql).toBe('(((0) AND alert_id NOT IN (R)) OR alert_id IN (R))');
    expect(statusCondition(['resolved', 'auto_resolved'], 'T', 'R').sql).toBe('(((alert_id IN (T IN {statuses:Array(String)})) AND alert_id NOT IN (R)) OR alert_id IN (R))');
  });
});
