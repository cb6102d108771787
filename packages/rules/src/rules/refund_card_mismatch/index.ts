// refund_card_mismatch: an APPROVED REFUND of a known APPROVED SALE to a different card_token than the
// sale's (refunds to another card are a classic cashier fraud). State: the sale's card and event id per
// sale row (columns of the sale rows), for the whole refund lookback (the ledger's own copies are
// dropped after the duplicate horizon), written with the sale's changelog value. See README.md.
import { formatMoney, type Transaction } from '@tillwatch/schemas';
import { SEEN, VOIDED } from '../../storage/ledger.js';
import type { EngineCore, MerchantState, RuleCommon, RuleDefinition, RuleInstance, TerminalState, Variant } from '../types.js';

export type RefundCardMismatchConfig = RuleCommon;

class RefundCardMismatch implements RuleInstance {
  readonly def = refundCardMismatch;
  /**
   * Per sale row: the sale's card_token and event_id (null: no sale stored in that row), in columns of
   * the sale rows (cleared when a row is freed). Shared by name with the shadow instance, so a shadow
   * added later by setRules knows every sale held; refund_after_deadline shares the event ids.
   */
  private readonly cards: (string | null)[];
  private readonly events: (string | null)[];

  constructor(
    private readonly core: EngineCore,
    readonly slot: number,
    readonly variant: Variant,
  ) {
    this.cards = core.sales.rows.column('sale_card_token');
    this.events = core.sales.rows.column('sale_event_id');
  }

  onSaleStored(term: TerminalState, t: Transaction, row: number, voided: boolean, hadRefunds: boolean): void {
    if (row < 0) return;
    this.cards[row] = t.card_token;
    this.events[row] = t.event_id;
    if (!hadRefunds || voided) return;
    // The sale arrived after refunds of it: each refund to another card fires now.
    const m = term.merchant;
    for (const r of this.core.sales.refundsOf(row)) {
      if (r.card === t.card_token) continue;
      const p = this.core.rulesFor(m, r.terminalId)[this.variant]!.refund_card_mismatch;
      this.fire(p, m, row, r.terminalId, r.card, r.txn, r.eventId, r.amount, r.et, t.received_time);
    }
  }

  onRefund(term: TerminalState, t: Transaction, row: number): void {
    if (row < 0 || t.original_txn_id === null) return;
    const flags = this.core.sales.rows.flags(row);
    if (!(flags & SEEN) || flags & VOIDED) return; // refund_without_sale's case
    const card = this.cards[row];
    if (card === null || card === undefined || card === t.card_token) return;
    this.fire(term.rules[this.variant]!.refund_card_mismatch, term.merchant, row, term.id, t.card_token, t.txn_id, t.event_id, t.amount_minor, t.event_time, t.received_time);
  }

  private fire(p: RefundCardMismatchConfig, m: MerchantState, sale: number, terminalId: string, card: string, refundTxn: string, refundEventId: string, amount: number, refundEt: number, detectedAt: number): void {
    if (!p.enabled) return;
    const c = this.core.sales.rows;
    const saleEt = c.eventTime(sale);
    const saleCard = this.cards[sale]!;
    const saleEvent = this.events[sale]!;
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
      `Refund ${refundTxn} of ${formatMoney(amount, c.currency[sale]!)} at terminal ${terminalId} went to card ${card}, but sale ${c.txn[sale]!} was paid with card ${saleCard}.`,
      { refund_amount_minor: amount, sale_amount_minor: c.amount(sale) },
      refundTxn,
      c.currency[sale]!,
      amount,
    );
  }

  writeSale(row: number, out: Record<string, unknown>): void {
    const card = this.cards[row];
    if (card !== null && card !== undefined) {
      out.sale_card_token = card;
      out.sale_event_id = this.events[row]!;
    }
  }

  readSale(_m: MerchantState, row: number, s: Record<string, unknown>): void {
    const card = s.sale_card_token;
    const ev = s.sale_event_id;
    this.cards[row] = typeof card === 'string' ? card : null;
    this.events[row] = typeof ev === 'string' ? ev : null;
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
