// replay's live-vs-backtest comparison (pure): by id and field for field, for alerts (with their
// incident), alert updates, refund reasons, incident memberships, governor decisions and actions; a
// missing, extra or changed record of any kind makes the runs differ.
import { describe, expect, it } from 'vitest';
import type { Action, ActionDecision, AlertUpdate, IncidentMembership, RefundReason } from '@tillwatch/schemas';
import { compareOutputs, formatOutputDiff, type AlertLine as Alert, type EngineAnswer } from '../src/lib/replay.js';

const alert = (id: string, summary = 's'): Alert => ({
  alert_id: id,
  rule: 'duplicate_charge',
  rule_version: 1,
  severity: 'high',
  terminal_id: 'T1',
  merchant_id: 'M1',
  card_token: 'tok',
  event_ids: ['e1', 'e2'],
  window_start: 1,
  window_end: 2,
  detected_at: 3,
  summary,
  details: { amount_minor: 100 },
  rules_version: 1,
  currency: 'EUR',
  amount_minor: 100,
  incident_id: null,
});
const update = (id: string, alertId: string): AlertUpdate => ({
  update_id: id,
  alert_id: alertId,
  rule: 'duplicate_charge',
  rule_version: 1,
  terminal_id: 'T1',
  merchant_id: 'M1',
  status: 'auto_resolved',
  resolution: 'reversed',
  resolved_by_event_ids: ['e3'],
  resolved_at: 4,
  summary: 'u',
  details: { amount_minor: 100 },
});
const reason = (eventId: string, code: RefundReason['reason'] = 'ordinary'): RefundReason => ({
  event_id: eventId,
  txn_id: `tx-${eventId}`,
  original_txn_id: 'tx-1',
  kind: 'REFUND',
  reason: code,
  merchant_id: 'M1',
  terminal_id: 'T1',
  amount_minor: 100,
  currency: 'EUR',
  event_time: 1,
  received_time: 2,
  alert_id: null,
});
const member = (alertId: string, incident = 'inc1'): IncidentMembership => ({
  membership_id: `m-${alertId}`,
  incident_id: incident,
  alert_id: alertId,
  rule: 'sync_lag',
  terminal_id: 'T1',
  merchant_id: 'M1',
  role: 'opening',
  alert_detected_at: 3,
  joined_at: 3,
});
const action = (id: string, kind: Action['kind'] = 'FREEZE_TERMINAL'): Action => ({ action_id: id, kind, target_type: 'TERMINAL', target_id: 'T1', merchant_id: 'M1', terminal_id: 'T1', alert_id: 'a1', rule: 'refund_without_sale', reason: 'r', issued_at: 3, expires_at: null });
const decision = (id: string, d: ActionDecision['decision'] = 'issued'): ActionDecision => ({
  decision_id: id, action_id: id, kind: 'FREEZE_TERMINAL', final_action_id: id, final_kind: 'FREEZE_TERMINAL', alert_id: 'a1', rule: 'refund_without_sale',
  terminal_id: 'T1', merchant_id: 'M1', target_type: 'TERMINAL', target_id: 'T1', decision: d, reason: 'policy', incident_id: null, decided_at: 3,
});
const answer = (): EngineAnswer => ({
  alerts: [alert('a1'), { ...alert('a2'), incident_id: 'inc1' }],
  updates: [update('u1', 'a1')],
  refundReasons: [reason('r1'), reason('r2', 'duplicate_charge')],
  memberships: [member('a2')],
  decisions: [decision('x1')],
  actions: [action('x1')],
});

describe('replay: live against backtest', () => {
  it('equal runs are equal, whatever the order; an absent optional field equals null', () => {
    const live = answer();
    live.alerts.reverse();
    const { currency: _c, amount_minor: _a, ...noMoney } = alert('a3');
    const withNull = { ...alert('a3'), currency: null, amount_minor: null };
    live.alerts.push(noMoney as Alert);
    const bt = answer();
    bt.alerts.push(withNull);
    const d = compareOutputs(live, bt);
    expect(d.equal).toBe(true);
    expect(formatOutputDiff(d)).toBe(
      [
        '  alerts                3 = backtest 3',
        '  alert updates         1 = backtest 1',
        '  refund reasons        2 = backtest 2',
        '  incident memberships  1 = backtest 1',
        '  governor decisions    1 = backtest 1',
        '  actions               1 = backtest 1',
      ].join('\n'),
    );
  });

  it('a missing update, an extra reason or a changed field of any kind differs', () => {
    const noUpdate = answer();
    noUpdate.updates = [];
    expect(compareOutputs(noUpdate, answer())).toMatchObject({ equal: false, updates: { onlyBacktest: ['u1'], equal: false }, alerts: { equal: true } });
    const extra = answer();
    extra.refundReasons.push(reason('r3'));
    expect(compareOutputs(extra, answer())).toMatchObject({ equal: false, refundReasons: { onlyLive: ['r3'] } });
    const changed = answer();
    changed.refundReasons[1] = reason('r2', 'sync_failure');
    const d = compareOutputs(changed, answer());
    expect(d).toMatchObject({ equal: false, refundReasons: { differ: ['r2'] } });
    expect(formatOutputDiff(d)).toContain('refund reasons        DIFFERENT: live 2, backtest 2; different fields: r2');
    const summary = answer();
    summary.alerts[0] = alert('a1', 'other');
    expect(compareOutputs(summary, answer()).alerts.differ).toEqual(['a1']);
  });

  it("the second stage's records count: an alert's incident, a membership, a decision or an action that differs", () => {
    const noIncident = answer();
    noIncident.alerts[1] = alert('a2');
    expect(compareOutputs(noIncident, answer())).toMatchObject({ equal: false, alerts: { differ: ['a2'] } });
    const otherIncident = answer();
    otherIncident.memberships = [member('a2', 'inc2')];
    expect(compareOutputs(otherIncident, answer())).toMatchObject({ equal: false, memberships: { differ: ['m-a2'] } });
    const downgraded = answer();
    downgraded.decisions = [decision('x1', 'downgraded')];
    expect(compareOutputs(downgraded, answer())).toMatchObject({ equal: false, decisions: { differ: ['x1'] }, actions: { equal: true } });
    const extraAction = answer();
    extraAction.actions.push(action('x2', 'REVIEW_REFUND'));
    const d = compareOutputs(extraAction, answer());
    expect(d).toMatchObject({ equal: false, actions: { onlyLive: ['x2'] } });
    expect(formatOutputDiff(d)).toContain('actions               DIFFERENT: live 2, backtest 1; only live: x2');
  });
});
