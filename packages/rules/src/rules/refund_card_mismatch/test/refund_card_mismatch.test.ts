import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createChangelogView, createRuleEngine, parseRulesConfig, type ChangelogValue } from '../../../index.js';
import { HOUR, MIN, SEC, Scenario } from '../../../../test/helpers/builder.js';
import { runEvents } from '../../../../test/helpers/run.js';

const DAY = 24 * HOUR;

describe('refund_card_mismatch', () => {
  it('config: common fields only, high by default, REVIEW_REFUND of the refund', () => {
    const c = parseRulesConfig({});
    expect(c.rules.refund_card_mismatch).toEqual({ enabled: true, severity: 'high', mode: 'active' });
    expect(c.policy.refund_card_mismatch).toEqual([{ kind: 'REVIEW_REFUND', expires_after: null }]);
    expect(() => parseRulesConfig({ rules: { refund_card_mismatch: { card: 'x' } } })).toThrow(/rules\.refund_card_mismatch/);
    const m = parseRulesConfig({ overrides: { merchants: { M2: { refund_card_mismatch: { enabled: false } } } } });
    expect(m.overrides.merchants.M2!.refund_card_mismatch).toEqual({ enabled: false });
  });

  it('fires for a refund to another card, with the sale and the refund as evidence, money in the summary and REVIEW_REFUND on the refund', () => {
    const s = new Scenario();
    const sale = s.sale({ at: 0, terminal: 'T1', card: 'tok_a', amount: 2500 });
    s.refund({ at: MIN, terminal: 'T1', card: 'tok_a', amount: 100, of: sale.txn_id });
    const bad = s.refund({ at: 2 * MIN, terminal: 'T2', card: 'tok_b', amount: 2400, of: sale.txn_id });
    const out = runEvents(createRuleEngine(parseRulesConfig({})), s.events);
    expect(out.alerts.map((a) => [a.rule, a.event_ids, a.terminal_id, a.card_token])).toEqual([['refund_card_mismatch', [sale.event_id, bad.event_id], 'T2', 'tok_b']]);
    expect(out.alerts[0]!.summary).toBe(`Refund ${bad.txn_id} of 24.00 EUR at terminal T2 went to card tok_b, but sale ${sale.txn_id} was paid with card tok_a.`);
    expect(out.alerts[0]!.details).toEqual({ refund_amount_minor: 2400, sale_amount_minor: 2500 });
    expect(out.actions.map((a) => [a.kind, a.target_id])).toEqual([['REVIEW_REFUND', bad.txn_id]]);
  });

  it('a merchant override disables it for that merchant only', () => {
    const s = new Scenario();
    for (const merchant of ['M1', 'M2']) {
      const sale = s.sale({ at: 0, merchant, terminal: `T${merchant}`, card: 'tok_a', amount: 1000, txn: `sale-${merchant}` });
      s.refund({ at: MIN, merchant, terminal: `T${merchant}`, card: 'tok_b', amount: 1000, of: sale.txn_id });
    }
    const cfg = parseRulesConfig({ overrides: { merchants: { M2: { refund_card_mismatch: { enabled: false } } } } });
    expect(runEvents(createRuleEngine(cfg), s.events).alerts.map((a) => [a.rule, a.merchant_id])).toEqual([['refund_card_mismatch', 'M1']]);
  });

  it('the sale card survives a restore from the changelog long after the duplicate horizon', () => {
    const s = new Scenario();
    const sale = s.sale({ at: 0, card: 'tok_a', amount: 1000 });
    const later = [s.sale({ at: 3 * DAY, card: 'tok_q', amount: 5 }), s.refund({ at: 3 * DAY + MIN, card: 'tok_b', amount: 1000, of: sale.txn_id })];
    const cfg = parseRulesConfig({});
    const a = createRuleEngine(cfg);
    const view = createChangelogView(a);
    runEvents(a, [sale]);
    a.advanceClock(sale.received_time + 2 * DAY); // legs dropped
    const topic = new Map<string, ChangelogValue>();
    for (const [k, v] of JSON.parse(JSON.stringify(view.takeChanges())) as [string, ChangelogValue | null][]) {
      if (v === null) topic.delete(k);
      else topic.set(k, v);
    }
    const b = createRuleEngine(cfg);
    b.setClock(a.clock());
    createChangelogView(b).restore(topic);
    expect(runEvents(b, later).alerts.map((x) => x.rule)).toEqual(['refund_card_mismatch']);
    expect(runEvents(a, later).alerts.map((x) => x.rule)).toEqual(['refund_card_mismatch']);
  });

  it('fires exactly for the approved refunds of a seen, unvoided sale to another card, whichever arrives first (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ card: fc.constantFrom('a', 'b', 'c'), approved: fc.boolean() }), { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        fc.boolean(),
        (refunds, saleLast, voided) => {
          const s = new Scenario();
          const add = () => s.sale({ at: 0, card: 'a', amount: 10_000, txn: 'the-sale', lag: saleLast ? 20 * MIN : 1000 });
          if (!saleLast) add();
          if (voided) s.void({ at: 30 * SEC, card: 'a', amount: 10_000, of: 'the-sale' });
          refunds.forEach((r, i) => s.refund({ at: (i + 1) * MIN, card: r.card, amount: 10, of: 'the-sale', id: `ev-rf-${i}`, status: r.approved ? 'APPROVED' : 'DECLINED' }));
          if (saleLast) add();
          const expected = voided ? [] : refunds.map((r, i) => (r.approved && r.card !== 'a' ? `ev-rf-${i}` : null)).filter((x) => x !== null);
          const got = runEvents(createRuleEngine(parseRulesConfig({})), s.events).alerts.filter((a) => a.rule === 'refund_card_mismatch');
          expect(got.map((a) => a.event_ids.find((id) => id.startsWith('ev-rf-')))).toEqual(expected);
        },
      ),
    );
  });
});

describe('refund_card_mismatch shadow instance', () => {
  it('added by setRules after the sale, it still knows the sale card (shared columns), and never acts', () => {
    const s = new Scenario();
    const sale = s.sale({ at: 0, card: 'tok_a', amount: 1000 });
    const refund = s.refund({ at: MIN, card: 'tok_b', amount: 1000, of: sale.txn_id });
    const e = createRuleEngine(parseRulesConfig({ rules: { refund_card_mismatch: { enabled: false }, refund_after_deadline: { enabled: false } } }));
    runEvents(e, [sale]);
    e.setRules(parseRulesConfig({ version: 2, rules: { refund_card_mismatch: { enabled: false } }, shadow: { refund_card_mismatch: { enabled: true }, refund_after_deadline: { deadline: '30s' } } }));
    const out = runEvents(e, [refund]);
    expect(out.alerts).toEqual([]);
    expect(out.actions).toEqual([]);
    expect(out.shadowAlerts.map((a) => [a.rule, a.event_ids])).toEqual([
      ['refund_card_mismatch', [sale.event_id, refund.event_id]],
      ['refund_after_deadline', [sale.event_id, refund.event_id]],
    ]);
  });

  it('a refund to another card in another currency than its sale is stated in its own currency (summary and alert money)', () => {
    const s = new Scenario();
    s.sale({ at: 0, card: 'a', amount: 10000, currency: 'EUR', txn: 'S1' });
    s.refund({ at: MIN, card: 'z', amount: 500, currency: 'KWD', of: 'S1', txn: 'R1' });
    const out = runEvents(createRuleEngine(parseRulesConfig({})), s.events).alerts.filter((a) => a.rule === 'refund_card_mismatch');
    expect(out.map((a) => [a.currency, a.amount_minor, a.summary.split(' at terminal')[0]])).toEqual([['KWD', 500, 'Refund R1 of 0.500 KWD']]);
  });
});
