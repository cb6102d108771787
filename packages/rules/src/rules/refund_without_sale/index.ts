// refund_without_sale: an APPROVED REFUND whose original_txn_id is null, names no APPROVED SALE of the
// merchant seen within the refund lookback, or names a voided sale. No state of its own: it reads the
// sale ledger (shared storage). See README.md.
import { formatMoney, type Transaction } from '@tillwatch/schemas';
import { fmtDuration } from '../../format.js';
import { SEEN, VOIDED } from '../../storage/ledger.js';
import type { EngineCore, RuleCommon, RuleDefinition, RuleInstance, TerminalState, Variant } from '../types.js';

export type RefundWithoutSaleConfig = RuleCommon;

class RefundWithoutSale implements RuleInstance {
  readonly def = refundWithoutSale;
  constructor(
    private readonly core: EngineCore,
    readonly slot: number,
    readonly variant: Variant,
  ) {}

  onRefund(term: TerminalState, t: Transaction, row: number): void {
    const p = term.rules[this.variant]!.refund_without_sale;
    if (!p.enabled) return;
    const orig = t.original_txn_id;
    if (orig === null) return this.fire(term, t, p, 'names no original sale', { no_original_txn: 1 });
    const flags = row >= 0 ? this.core.sales.rows.flags(row) : 0;
    const m = term.merchant;
    if (!(flags & SEEN)) this.fire(term, t, p, `refers to sale ${orig}, which merchant ${m.id} has not seen within the ${fmtDuration(this.core.lookback)} lookback`, { sale_not_found: 1 });
    else if (flags & VOIDED) this.fire(term, t, p, `refers to sale ${orig}, which was voided or reversed`, { sale_voided: 1 });
  }

  private fire(term: TerminalState, t: Transaction, p: RefundWithoutSaleConfig, why: string, flags: Record<string, number>): void {
    this.core.emit(
      this,
      p,
      term.id,
      term.merchant.id,
      t.card_token,
      [t.event_id],
      t.event_time,
      t.event_time,
      t.received_time,
      `Approved refund ${t.txn_id} of ${formatMoney(t.amount_minor, t.currency)} at terminal ${term.id} ${why}.`,
      { amount_minor: t.amount_minor, lookback_ms: this.core.lookback, ...flags },
      t.txn_id,
      t.currency,
      t.amount_minor,
    );
  }
}

export const refundWithoutSale: RuleDefinition<'refund_without_sale', RefundWithoutSaleConfig> = {
  id: 'refund_without_sale',
  version: 1,
  defaults: { enabled: true, severity: 'high', mode: 'active' },
  fields: {},
  policy: [
    { kind: 'FREEZE_TERMINAL', expires_after: 24 * 3600_000 },
    { kind: 'NOTIFY_ACQUIRER', expires_after: null },
  ],
  alertHas: { card: true, transaction: true },
  create: (core, slot, variant) => new RefundWithoutSale(core, slot, variant),
};
