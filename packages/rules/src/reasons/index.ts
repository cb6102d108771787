// Why each refund happened (pos.refunds.reasons.v1): every APPROVED REFUND, REVERSAL and VOID gets
// exactly one reason, decided when it arrives, after the rules ran on it; first match wins:
//
//   no_sale           refund_without_sale fired on it
//   duplicate_charge  it refunds, reverses or voids a leg of a duplicate charge raised earlier
//   sync_failure      its sale synced more than sync_lag's threshold late, or arrived while its
//                     terminal was in a late-sync episode
//   policy            refund_card_mismatch or refund_after_deadline fired on it
//   ordinary          none of the above
//
// Not a rule (no config, no alerts): a small module the engine feeds. Its only state is one bit per
// sale row (the sale synced during trouble), written with the sale's changelog value. See README.md.
import type { Alert, RefundReason, RefundReasonCode, Transaction } from '@tillwatch/schemas';
import type { EngineCore, RuleInstance, TerminalState } from '../rules/types.js';
import { SEEN } from '../storage/ledger.js';
import { fieldKeys, type StateWriter } from '../state-writer.js';

/** Changelog fields (SaleSnapshot). */
const K = fieldKeys('sync_failure');

/**
 * Sale-row flag: the sale synced late or during its terminal's late-sync episode. Bits 1-8 are the
 * ledger's and the engine's (storage/ledger.ts); this is the first bit above them.
 */
export const SYNC_FAILURE = 1 << 8;

/** What the reasons read from duplicate_charge's active instance. */
export interface DuplicateAlertSource {
  alertsOfRow(row: number): readonly { id: string }[];
}

/** What the reasons read from sync_lag's active instance. */
export interface SyncEpisodeSource {
  episodeOpen(term: TerminalState): boolean;
}

const hasAlertsOfRow = (x: unknown): x is DuplicateAlertSource => typeof (x as DuplicateAlertSource).alertsOfRow === 'function';
const hasEpisodeOpen = (x: unknown): x is SyncEpisodeSource => typeof (x as SyncEpisodeSource).episodeOpen === 'function';

const POLICY_RULES = new Set(['refund_card_mismatch', 'refund_after_deadline']);

export class RefundReasons {
  private readonly duplicates: DuplicateAlertSource | null;
  private readonly episodes: SyncEpisodeSource | null;

  /** instances: the engine's rule instances; the active duplicate_charge and sync_lag ones are used (they live as long as the engine). */
  constructor(
    private readonly core: EngineCore,
    instances: readonly RuleInstance[],
  ) {
    const active = (id: string): RuleInstance | undefined => instances.find((i) => i.def.id === id && i.variant === 0);
    const d = active('duplicate_charge');
    const s = active('sync_lag');
    this.duplicates = hasAlertsOfRow(d) ? d : null;
    this.episodes = hasEpisodeOpen(s) ? s : null;
  }

  /** An APPROVED SALE was stored at row (after the rules' hooks): remember whether it synced during trouble. */
  onSaleStored(term: TerminalState, t: Transaction, row: number): void {
    if (row < 0) return;
    const late = t.received_time - t.event_time > term.rules[0]!.sync_lag.threshold || (this.episodes?.episodeOpen(term) ?? false);
    const rows = this.core.sales.rows;
    if (late) rows.addFlags(row, SYNC_FAILURE);
    else rows.clearFlags(row, SYNC_FAILURE);
  }

  /**
   * The reason of an APPROVED REFUND, REVERSAL or VOID, once the rules ran on it. alerts: the alerts
   * (pos.alerts, not shadow) of the engine call so far (those that fired on it are among them).
   * saleRow: the row of its original_txn_id as the ledger found or made it for this event (-1: none).
   */
  reason(term: TerminalState, t: Transaction, alerts: readonly Alert[], saleRow: number): RefundReason {
    // The alerts that fired on it (a plain loop: this runs for every approved refund, reversal and void).
    let noSale: Alert | undefined;
    let policy: Alert | undefined;
    for (let i = 0; i < alerts.length; i++) {
      const a = alerts[i]!;
      if (a.rule === 'refund_without_sale') {
        if (noSale === undefined && a.event_ids.includes(t.event_id)) noSale = a;
      } else if (POLICY_RULES.has(a.rule) && policy === undefined && a.event_ids.includes(t.event_id)) policy = a;
    }
    let code: RefundReasonCode = 'ordinary';
    let alertId: string | null = null;
    if (noSale !== undefined) {
      code = 'no_sale';
      alertId = noSale.alert_id;
    } else {
      const orig = t.original_txn_id;
      const ledger = this.core.sales;
      const row = orig === null ? -1 : saleRow;
      const dup = row >= 0 && this.duplicates !== null ? this.duplicates.alertsOfRow(row) : [];
      const flags = row >= 0 ? ledger.rows.flags(row) : 0;
      if (dup.length > 0) {
        code = 'duplicate_charge';
        alertId = dup[0]!.id;
      } else if (flags & SEEN && flags & SYNC_FAILURE) code = 'sync_failure';
      else if (policy !== undefined) {
        code = 'policy';
        alertId = policy.alert_id;
      }
    }
    return {
      event_id: t.event_id,
      txn_id: t.txn_id,
      original_txn_id: t.original_txn_id,
      kind: t.kind as RefundReason['kind'],
      reason: code,
      merchant_id: t.merchant_id,
      terminal_id: t.terminal_id,
      amount_minor: t.amount_minor,
      currency: t.currency,
      event_time: t.event_time,
      received_time: t.received_time,
      alert_id: alertId,
    };
  }

  /** The changelog fields of a sale row (`sync_failure`, absent when false). */
  writeSale(row: number, w: StateWriter): void {
    if (this.core.sales.rows.flags(row) & SYNC_FAILURE) w.bool(K.sync_failure, true);
  }

  readSale(row: number, s: Record<string, unknown>): void {
    if (s.sync_failure === true) this.core.sales.rows.addFlags(row, SYNC_FAILURE);
  }
}
