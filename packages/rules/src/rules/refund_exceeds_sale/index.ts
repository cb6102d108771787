// refund_exceeds_sale: APPROVED refunds of one sale in the sale's currency, across all terminals of the
// merchant, add up to more than the sale (a refund in another currency is not comparable: not counted).
// No state of its own: the refunds and totals are in the sale ledger (shared storage). See README.md.
import { formatMoney, type Transaction } from '@tillwatch/schemas';
import { SEEN, VOIDED } from '../../storage/ledger.js';
import type { EngineCore, RuleCommon, RuleDefinition, RuleInstance, TerminalState, Variant } from '../types.js';

export type RefundExceedsSaleConfig = RuleCommon;

class RefundExceedsSale implements RuleInstance {
  readonly def = refundExceedsSale;
  constructor(
    private readonly core: EngineCore,
    readonly slot: number,
    readonly variant: Variant,
  ) {}

  onRefund(term: TerminalState, t: Transaction, row: number, before: number): void {
    if (row < 0 || t.original_txn_id === null) return;
    const c = this.core.sales.rows;
    const flags = c.flags(row);
    if (!(flags & SEEN) || flags & VOIDED) return; // refund_without_sale's case
    if (t.currency !== c.currency[row]) return; // another currency: not comparable, not in the total
    if (before + t.amount_minor > c.amount(row)) {
      this.fire(term.rules[this.variant]!.refund_exceeds_sale, row, term.id, t.card_token, t.txn_id, t.event_id, t.amount_minor, t.currency, t.event_time, before, t.received_time);
    }
  }

  /** The sale arrived after refunds of it: each refund that took the running total above it fires now. */
  readonly saleStoredOnlyIfRefunded = true;

  onSaleStored(term: TerminalState, t: Transaction, row: number, voided: boolean, hadRefunds: boolean): void {
    if (row < 0 || !hadRefunds || voided) return;
    const m = term.merchant;
    const amount = this.core.sales.rows.amount(row);
    let total = 0;
    for (const r of this.core.sales.refundsOf(row)) {
      if (r.currency !== t.currency) continue; // another currency than the sale's: not counted
      const before = total;
      total += r.amount;
      if (total > amount) {
        const p = this.core.rulesFor(m, r.terminalId)[this.variant]!.refund_exceeds_sale;
        this.fire(p, row, r.terminalId, r.card, r.txn, r.eventId, r.amount, r.currency, r.et, before, t.received_time);
      }
    }
  }

  /** refundCurrency: the refund's own (only refunds in the sale's currency are counted, so the same). */
  private fire(p: RefundExceedsSaleConfig, sale: number, terminalId: string, card: string, refundTxn: string, refundEventId: string, refundAmount: number, refundCurrency: string, refundEt: number, before: number, detectedAt: number): void {
    if (!p.enabled) return;
    const c = this.core.sales.rows;
    const m = this.core.merchantOfRow(sale);
    const total = before + refundAmount;
    const saleAmount = c.amount(sale);
    const saleEt = c.eventTime(sale);
    const cur = c.currency[sale]!;
    this.core.emit(
      this,
      p,
      terminalId,
      m.id,
      card,
      [refundEventId],
      Math.min(saleEt, refundEt),
      Math.max(saleEt, refundEt),
      detectedAt,
      `Approved refunds of sale ${c.txn[sale]} add up to ${formatMoney(total, cur)}, ${formatMoney(total - saleAmount, cur)} more than the sale's ${formatMoney(saleAmount, cur)}; refund ${refundTxn} of ${formatMoney(refundAmount, refundCurrency)} at terminal ${terminalId} ${before > saleAmount ? 'added to it' : 'crossed it'}.`,
      { sale_amount_minor: saleAmount, refunded_total_minor: total, refunded_before_minor: before, refund_amount_minor: refundAmount, excess_minor: total - saleAmount },
      refundTxn,
      refundCurrency,
      refundAmount,
    );
  }
}

export const refundExceedsSale: RuleDefinition<'refund_exceeds_sale', RefundExceedsSaleConfig> = {
  id: 'refund_exceeds_sale',
  version: 1,
  defaults: { enabled: true, severity: 'critical', mode: 'active' },
  fields: {},
  policy: [
    { kind: 'FREEZE_TERMINAL', expires_after: 24 * 3600_000 },
    { kind: 'NOTIFY_ACQUIRER', expires_after: null },
  ],
  alertHas: { card: true, transaction: true },
  create: (core, slot, variant) => new RefundExceedsSale(core, slot, variant),
};
