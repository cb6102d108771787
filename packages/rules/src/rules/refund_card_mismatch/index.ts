// refund_card_mismatch: an APPROVED REFUND of a known APPROVED SALE to a different card_token than the
// sale's (refunds to another card are a classic cashier fraud). State: the sale's card and event id per
// sale row (the ledger's card and event id columns, kept for the whole refund lookback), written
// with the sale's changelog value (sale_card_token, sale_event_id). See README.md.
import { formatMoney, type Transaction } from '@tillwatch/schemas';
import { SEEN, VOIDED } from '../../storage/ledger.js';
import { fieldKeys, type StateWriter } from '../../state-writer.js';

/** Changelog fields (SaleSnapshot). */
const K = fieldKeys('sale_card_token', 'sale_event_id');
import type { EngineCore, MerchantState, RuleCommon, RuleDefinition, RuleInstance, TerminalState, Variant } from '../types.js';

export type RefundCardMismatchConfig = RuleCommon;

class RefundCardMismatch implements RuleInstance {
  readonly def = refundCardMismatch;
  // Per sale row: the sale's card_token and event_id (null: no sale stored in that row) are the ledger's
  // columns (rows.card, rows.eventId), which it keeps for the whole refund lookback and clears when a
  // row is freed; so a shadow instance added later by setRules knows every sale held.
  constructor(
    private readonly core: EngineCore,
    readonly slot: number,
    readonly variant: Variant,
  ) {}

  readonly saleStoredOnlyIfRefunded = true;

  onSaleStored(term: TerminalState, t: Transaction, row: number, voided: boolean, hadRefunds: boolean): void {
    if (row < 0 || !hadRefunds || voided) return;
    // The sale arrived after refunds of it: each refund to another card fires now.
    const m = term.merchant;
    for (const r of this.core.sales.refundsOf(row)) {
      if (r.card === t.card_token) continue;
      const p = this.core.rulesFor(m, r.terminalId)[this.variant]!.refund_card_mismatch;
      this.fire(p, m, row, r.terminalId, r.card, r.txn, r.eventId, r.amount, r.currency, r.et, t.received_time);
    }
  }

  onRefund(term: TerminalState, t: Transaction, row: number): void {
    if (row < 0 || t.original_txn_id === null) return;
    const flags = this.core.sales.rows.flags(row);
    if (!(flags & SEEN) || flags & VOIDED) return; // refund_without_sale's case
    const card = this.core.sales.rows.card[row];
    if (card === null || card === undefined || card === t.card_token) return;
    this.fire(term.rules[this.variant]!.refund_card_mismatch, term.merchant, row, term.id, t.card_token, t.txn_id, t.event_id, t.amount_minor, t.currency, t.event_time, t.received_time);
  }

  /** amount, currency: the refund's own (a refund may be in another currency than its sale). */
  private fire(p: RefundCardMismatchConfig, m: MerchantState, sale: number, terminalId: string, card: string, refundTxn: string, refundEventId: string, amount: number, currency: string, refundEt: number, detectedAt: number): void {
    if (!p.enabled) return;
    const c = this.core.sales.rows;
    const saleEt = c.eventTime(sale);
    const saleCard = c.card[sale]!;
    const saleEvent = c.eventId[sale]!;
    // Evidence: the sale and the refund, earlier event time first (ties: event id).
    const evidence = saleEt < refundEt || (saleEt === refundEt && saleEvent <= refundEventId) ? [saleEvent, refundEventId] : [refundEventId, saleEvent];
    this.core.emit(
      this,
      p,
      terminalId,
      m.id,
      card,
      evidence,
      Math.min(saleEt, refundEt),
      Math.max(saleEt, refundEt),
      detectedAt,
      `Refund ${refundTxn} of ${formatMoney(amount, currency)} at terminal ${terminalId} went to card ${card}, but sale ${c.txn[sale]!} was paid with card ${saleCard}.`,
      { refund_amount_minor: amount, sale_amount_minor: c.amount(sale) },
      refundTxn,
      currency,
      amount,
    );
  }

  writeSale(row: number, w: StateWriter): void {
    const c = this.core.sales.rows;
    const card = c.card[row];
    if (card !== null && card !== undefined) {
      w.str(K.sale_card_token, card);
      w.str(K.sale_event_id, c.eventId[row]!);
    }
  }

  /**
   * The changelog value keeps these two fields apart from duplicate_charge's `card_token`/`event_id`
   * (which it writes only while the sale is a duplicate leg); restored into the ledger's columns, which
   * hold the same values. Called after the ledger and duplicate_charge read the row.
   */
  readSale(_m: MerchantState, row: number, s: Record<string, unknown>): void {
    const c = this.core.sales.rows;
    const card = s.sale_card_token;
    const ev = s.sale_event_id;
    if (typeof card === 'string') c.card[row] = card;
    if (typeof ev === 'string') c.eventId[row] = ev;
  }
}

export const refundCardMismatch: RuleDefinition<'refund_card_mismatch', RefundCardMismatchConfig> = {
  id: 'refund_card_mismatch',
  version: 1,
  defaults: { enabled: true, severity: 'high', mode: 'active' },
  fields: {},
  policy: [{ kind: 'REVIEW_REFUND', expires_after: null }],
  alertHas: { card: true, transaction: true },
  create: (core, slot, variant) => new RefundCardMismatch(core, slot, variant),
};
