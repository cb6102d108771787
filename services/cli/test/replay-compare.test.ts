// replay's live-vs-backtest comparison (pure): by id and field for field, for alerts, alert updates
// and refund reasons; a missing, extra or changed record of any kind makes the runs differ.
import { describe, expect, it } from 'vitest';
import type { Alert, AlertUpdate, RefundReason } from '@tillwatch/schemas';
import { compareOutputs, formatOutputDiff, type EngineAnswer } from '../src/lib/replay.js';

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
const answer = (): EngineAnswer => ({ alerts: [alert('a1'), alert('a2')], updates: [update('u1', 'a1')], refundReasons: [reason('r1'), reason('r2', 'duplicate_charge')] });

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
    expect(formatOutputDiff(d)).toBe(['  alerts          3 = backtest 3', '  alert updates   1 = backtest 1', '  refund reasons  2 = backtest 2'].join('\n'));
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
    expect(formatOutputDiff(d)).toContain('refund reasons  DIFFERENT: live 2, backtest 2; different fields: r2');
    const summary = answer();
    summary.alerts[0] = alert('a1', 'other');
    expect(compareOutputs(summary, answer()).alerts.differ).toEqual(['a1']);
  });
});
