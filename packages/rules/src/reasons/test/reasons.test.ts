import { describe, expect, it } from 'vitest';
import { createRuleEngine, parseRulesConfig } from '../../index.js';
import { MIN, Scenario } from '../../../test/helpers/builder.js';
import { runEvents } from '../../../test/helpers/run.js';

const reasonsOf = (cfg: unknown, s: Scenario) => runEvents(createRuleEngine(parseRulesConfig(cfg)), s.events).refundReasons.map((r) => [r.event_id, r.reason, r.alert_id !== null]);

describe('refund reasons', () => {
  it('a disabled or shadow rule gives no reason: the next match wins', () => {
    const s = new Scenario();
    const r = s.refund({ at: 0, card: 'tok', amount: 500, of: 'tx-unknown' });
    expect(reasonsOf({}, s)).toEqual([[r.event_id, 'no_sale', true]]);
    expect(reasonsOf({ rules: { refund_without_sale: { enabled: false } } }, s)).toEqual([[r.event_id, 'ordinary', false]]);
    expect(reasonsOf({ rules: { refund_without_sale: { mode: 'shadow' } } }, s)).toEqual([[r.event_id, 'ordinary', false]]);
  });

  it('a void without original_txn_id, and of an unknown sale, is ordinary; declined and pending ones get none', () => {
    const s = new Scenario();
    const v1 = s.add({ at: 0, kind: 'VOID', card: 'tok', amount: 500, orig: null });
    const v2 = s.void({ at: MIN, kind: 'REVERSAL', card: 'tok', amount: 500, of: 'tx-unknown' });
    s.void({ at: 2 * MIN, kind: 'REVERSAL', status: 'DECLINED', card: 'tok', amount: 500, of: 'tx-unknown' });
    s.refund({ at: 3 * MIN, status: 'PENDING', card: 'tok', amount: 500, of: 'tx-unknown' });
    expect(reasonsOf({}, s)).toEqual([
      [v1.event_id, 'ordinary', false],
      [v2.event_id, 'ordinary', false],
    ]);
  });

  it('a void or reversal of a sale voided already gives no second reason (money comes back once); a void delivered before its sale, then again, neither', () => {
    const s = new Scenario();
    s.sale({ at: 0, card: 'tok', amount: 500, txn: 'tx-a' });
    const v = s.void({ at: MIN, card: 'tok', amount: 500, of: 'tx-a' });
    s.again(v);
    s.void({ at: 2 * MIN, kind: 'REVERSAL', card: 'tok', amount: 500, of: 'tx-a' });
    const early = s.void({ at: 3 * MIN, card: 'tok', amount: 700, of: 'tx-later' });
    s.again(early);
    s.sale({ at: 4 * MIN, card: 'tok', amount: 700, txn: 'tx-later' });
    expect(reasonsOf({}, s)).toEqual([
      [v.event_id, 'ordinary', false],
      [early.event_id, 'ordinary', false],
    ]);
  });

  it('sync_failure follows sync_lag threshold overrides of the sale terminal, also while sync_lag is disabled', () => {
    const s = new Scenario();
    s.sale({ at: 0, lag: 5 * MIN, terminal: 'T1', card: 'tok_a', amount: 1000, txn: 'tx-a' });
    const r = s.refund({ at: 10 * MIN, terminal: 'T2', card: 'tok_a', amount: 1000, of: 'tx-a' });
    expect(reasonsOf({}, s)).toEqual([[r.event_id, 'ordinary', false]]);
    expect(reasonsOf({ overrides: { terminals: { T1: { sync_lag: { threshold: '4m' } } } } }, s)).toEqual([[r.event_id, 'sync_failure', false]]);
    expect(reasonsOf({ rules: { sync_lag: { enabled: false } }, overrides: { terminals: { T1: { sync_lag: { threshold: '4m' } } } } }, s)).toEqual([[r.event_id, 'sync_failure', false]]);
  });
});
