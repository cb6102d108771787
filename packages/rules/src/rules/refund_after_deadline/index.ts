// refund_after_deadline: an APPROVED REFUND more than `deadline` (event time) after its sale. The
// deadline may not exceed engine.refund_lookback (config validation): older sales are not held. State:
// the sale's event id per sale row (evidence; the ledger's event id column), for the whole lookback,
// written with the sale's changelog value. See README.md.
import { formatMoney, type Transaction } from '@tillwatch/schemas';
import { DAY, duration } from '../../fields.js';
import { fmtDuration } from '../../format.js';
import { SEEN, VOIDED } from '../../storage/ledger.js';
import { fieldKeys, type StateWriter } from '../../state-writer.js';

/** Changelog fields (SaleSnapshot). */
const K = fieldKeys('sale_event_id');
import type { EngineCore, MerchantState, RuleCommon, RuleDefinition, RuleInstance, TerminalState, Variant } from '../types.js';

export interface RefundAfterDeadlineConfig extends RuleCommon {
  /** A refund whose event time is more than this after its sale's fires (ms). At most engine.refund_lookback. */
  deadline: number;
}

class RefundAfterDeadline implements RuleInstance {
  readonly def = refundAfterDeadline;

  constructor(
    private readonly core: EngineCore,
    readonly slot: number,
    readonly variant: Variant,
  ) {}

  // The sale's event id is the ledger's column (rows.eventId), kept for the whole refund lookback.
  readonly saleStoredOnlyIfRefunded = true;

  onSaleStored(term: TerminalState, t: Transaction, row: number, voided: boolean, hadRefunds: boolean): void {
    if (row < 0 || !hadRefunds || voided) return;
    // The sale arrived after refunds of it: each refund past the deadline fires now.
    const m = term.merchant;
    for (const r of this.core.sales.refundsOf(row)) {
      const p = this.core.rulesFor(m, r.terminalId)[this.variant]!.refund_after_deadline;
      if (r.et - t.event_time > p.deadline) this.fire(p, m, row, r.terminalId, r.card, r.txn, r.eventId, r.amount, r.currency, r.et, t.received_time);
    }
  }

  onRefund(term: TerminalState, t: Transaction, row: number): void {
    if (row < 0 || t.original_txn_id === null) return;
    const c = this.core.sales.rows;
    const flags = c.flags(row);
    if (!(flags & SEEN) || flags & VOIDED) return; // refund_without_sale's case
    const p = term.rules[this.variant]!.refund_after_deadline;
    if (t.event_time - c.eventTime(row) > p.deadline) this.fire(p, term.merchant, row, term.id, t.card_token, t.txn_id, t.event_id, t.amount_minor, t.currency, t.event_time, t.received_time);
  }

  /** amount, currency: the refund's own (a refund may be in another currency than its sale). */
  private fire(p: RefundAfterDeadlineConfig, m: MerchantState, sale: number, terminalId: string, card: string, refundTxn: string, refundEventId: string, amount: number, currency: string, refundEt: number, detectedAt: number): void {
    if (!p.enabled) return;
    const saleEvent = this.core.sales.rows.eventId[sale];
    if (saleEvent === null || saleEvent === undefined) return;
    const c = this.core.sales.rows;
    const saleEt = c.eventTime(sale);
    const late = refundEt - saleEt;
    this.core.emit(
      this,
      p,
      terminalId,
      m.id,
      card,
      [saleEvent, refundEventId],
      saleEt,
      refundEt,
      detectedAt,
      `Refund ${refundTxn} of ${formatMoney(amount, currency)} at terminal ${terminalId} was made ${fmtDuration(late)} after sale ${c.txn[sale]!}, ${fmtDuration(late - p.deadline)} past the ${fmtDuration(p.deadline)} refund deadline.`,
      { refund_amount_minor: amount, sale_amount_minor: c.amount(sale), after_ms: late, deadline_ms: p.deadline },
      refundTxn,
      currency,
      amount,
    );
  }

  writeSale(row: number, w: StateWriter): void {
    const ev = this.core.sales.rows.eventId[row];
    // (refund_card_mismatch, earlier in the registry, may have written the same field: the same value.)
    if (ev !== null && ev !== undefined) w.str(K.sale_event_id, ev);
  }

  readSale(_m: MerchantState, row: number, s: Record<string, unknown>): void {
    const ev = s.sale_event_id;
    if (typeof ev === 'string') this.core.sales.rows.eventId[row] = ev;
  }
}

export const refundAfterDeadline: RuleDefinition<'refund_after_deadline', RefundAfterDeadlineConfig> = {
  id: 'refund_after_deadline',
  version: 1,
  defaults: { enabled: true, severity: 'medium', mode: 'active', deadline: 7 * DAY },
  fields: { deadline: duration(1) },
  policy: [{ kind: 'REVIEW_REFUND', expires_after: null }],
  alertHas: { card: true, transaction: true },
  create: (core, slot, variant) => new RefundAfterDeadline(core, slot, variant),
};
