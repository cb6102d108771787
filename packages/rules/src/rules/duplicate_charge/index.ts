// duplicate_charge: two APPROVED SALEs, same merchant, card, amount and currency, different txn_id,
// event times <= window apart, at any terminals of the merchant, whichever arrives first.
// State (rule-wide, shared by the active and the shadow instance): the duplicate legs, sale rows of
// the ledger chained per (merchant, card, amount) through an open-addressing index, with an expiry
// wheel. See README.md.
import { alertUpdateId, formatMoney, type AlertResolution, type Transaction } from '@tillwatch/schemas';
import { duration, MIN } from '../../fields.js';
import { fmtDuration } from '../../format.js';
import { LEG, TXN_SEED, VOIDED } from '../../storage/ledger.js';
import { ExpiryWheel, RowIndex, hashString, mixInt } from '../../store.js';
import { fieldKeys, type StateWriter } from '../../state-writer.js';

/** Changelog fields (SaleSnapshot, RaisedDuplicateSnapshot). */
const K = fieldKeys('event_id', 'card_token', 'dup', 'dup_expiry', 'dup_alerts', 'alert_id', 'legs', 'terminal_id', 'amount', 'currency', 'resolved', 'credits', 'voided_leg');
import { PREFETCH_MAX, type EngineCore, type MerchantState, type RuleCommon, type RuleDefinition, type RuleInstance, type RuleStats, type TerminalState, type Variant } from '../types.js';

export interface DuplicateChargeConfig extends RuleCommon {
  /** Max event-time distance between the two legs, ms. */
  window: number;
}

const CARD_SEED = 0x5bd1e995;

/** The leg index hash of a sale: (card, amount); the merchant is checked against the row. */
const legHash = (t: Transaction): number => mixInt(hashString(t.card_token, CARD_SEED), t.amount_minor);

/**
 * A duplicate-charge alert raised into pos.alerts (active instance, mode active), kept on both legs'
 * sale rows for the refund lookback so a later void, reversal or refunds of either leg resolve it.
 */
interface RaisedDuplicate {
  id: string;
  /** txn_ids of the legs, earlier first. */
  legs: [string, string];
  terminal: string;
  card: string;
  amount: number;
  currency: string;
  resolved: boolean;
  /**
   * Refund money credited to this alert when it was resolved `refunded`, refund by refund (event id,
   * minor units; they add up to `amount`). A refund's money goes to at most one alert: another alert
   * sharing the leg counts only what is left of it.
   */
  credits: Credit[];
  /** The leg (txn_id) whose approved void or reversal resolved it, else null. */
  voidedLeg: string | null;
}

interface Credit {
  eventId: string;
  amount: number;
}

/** The changelog form (SaleSnapshot field `dup_alerts`, on both legs). */
export interface RaisedDuplicateSnapshot {
  alert_id: string;
  legs: [string, string];
  terminal_id: string;
  card_token: string;
  amount: number;
  currency: string;
  resolved: boolean;
  /** Absent (written before it existed): none. */
  credits?: { event_id: string; amount: number }[];
  /** Absent (written before it existed): null. */
  voided_leg?: string | null;
}
const SWEEP_BUCKET_MS = 5 * 60_000;

/** Refund money of refund `eventId` credited to alerts (other than `self`) this leg row is a leg of. */
function creditedElsewhere(list: readonly RaisedDuplicate[] | undefined, self: string, eventId: string): number {
  let n = 0;
  if (list !== undefined) for (const a of list) if (a.id !== self) for (const x of a.credits) if (x.eventId === eventId) n += x.amount;
  return n;
}

/** Finds the nearest leg and fires; the active instance and the shadow one each run it with their own parameters. */
function match(inst: RuleInstance, core: EngineCore, m: MerchantState, term: TerminalState, t: Transaction, row: number, head: number): void {
  const v = inst.variant;
  const c = core.sales.rows;
  const window = m.rules[v]!.duplicate_charge.window;
  const et = t.event_time;
  const clk = core.clk;
  const cur = c.currency[row]!;
  const txn = c.txn[row]!;
  let best = -1;
  let bestGap = Infinity;
  for (let a = head; a >= 0; a = c.legNext(a)) {
    if (!(c.flags(a) & VOIDED) && clk <= c.dupExpiry(a) && c.currency[a] === cur && c.txn[a] !== txn) {
      const aet = c.eventTime(a);
      const gap = aet > et ? aet - et : et - aet;
      // Nearest leg wins; ties broken by content, never by arrival or storage order.
      if (gap <= window && (gap < bestGap || (gap === bestGap && (aet < c.eventTime(best) || (aet === c.eventTime(best) && c.eventId[a]! < c.eventId[best]!))))) {
        best = a;
        bestGap = gap;
      }
    }
  }
  if (best >= 0) fire(inst, core, m, term, t, row, best, bestGap, window);
}

function fire(inst: RuleInstance, core: EngineCore, m: MerchantState, term: TerminalState, t: Transaction, b: number, a: number, gap: number, window: number): void {
  const v = inst.variant;
  const c = core.sales.rows;
  const ra = core.rulesFor(m, c.terminalId[a]!)[v]!;
  const rb = term.rules[v]!;
  if (!rb.duplicate_charge.enabled || !ra.duplicate_charge.enabled) return;
  // The alert belongs to the later leg (the retry), so it is the same whichever leg arrived first.
  const bLater = c.eventTime(b) > c.eventTime(a) || (c.eventTime(b) === c.eventTime(a) && c.eventId[b]! > c.eventId[a]!);
  const first = bLater ? a : b;
  const second = bLater ? b : a;
  const p = (second === b ? rb : ra).duplicate_charge;
  const t1 = c.terminalId[first]!;
  const t2 = c.terminalId[second]!;
  const evidence = [c.eventId[first]!, c.eventId[second]!];
  const id = core.emit(
    inst,
    p,
    t2,
    m.id,
    t.card_token,
    evidence,
    c.eventTime(first),
    c.eventTime(second),
    t.received_time,
    `Card ${t.card_token} was charged ${formatMoney(t.amount_minor, t.currency)} twice at merchant ${m.id} within ${fmtDuration(gap)}: transaction ${c.txn[first]} at terminal ${t1} and ${c.txn[second]} at terminal ${t2}.`,
    { amount_minor: t.amount_minor, gap_ms: gap, window_ms: window, same_terminal: t1 === t2 ? 1 : 0 },
    c.txn[second]!,
    t.currency,
    t.amount_minor,
  );
  // Only alerts that reach pos.alerts get a lifecycle (a shadow alert has nobody to close it for).
  if (inst instanceof DuplicateCharge && p.mode === 'active') {
    inst.raised(m, first, second, {
      id,
      legs: [c.txn[first]!, c.txn[second]!],
      terminal: t2,
      card: t.card_token,
      amount: t.amount_minor,
      currency: t.currency,
      resolved: false,
      credits: [],
      voidedLeg: null,
    });
  }
}

/** The active instance: owns the legs. */
class DuplicateCharge implements RuleInstance {
  readonly def = duplicateCharge;
  /** (merchant, card, amount) hash -> the row at the head of its chain of legs. */
  private readonly legs: RowIndex;
  private readonly wheel = new ExpiryWheel(SWEEP_BUCKET_MS);
  private readonly visit = (row: number, gen: number): void => this.expire(row, gen);
  private readonly touchRow = (row: number): void => {
    this.prefetch ^= this.legs.probe(this.core.sales.rows.dupHash(row));
  };
  private prefetch = 0;
  /** Hash of the sale being processed (computed by prefetchSale). */
  private dh = 0;
  /** Hashes of the sales hinted by engine.prefetch, by hint slot. */
  private readonly hints = new Int32Array(PREFETCH_MAX);
  private on = true;
  private shadow: RuleInstance | null = null;
  private nLegs = 0;
  private nLate = 0;
  /** Sale row -> the raised duplicate alerts it is a leg of (rare: only rows of fired pairs). */
  private readonly raisedOf = new Map<number, RaisedDuplicate[]>();

  constructor(
    private readonly core: EngineCore,
    readonly slot: number,
    readonly variant: Variant,
    capacity: number,
  ) {
    // Sized for the sales the engine expects (load <= 1/2 before it grows): legs are the sales within
    // the duplicate horizon, at most all of them. Half the size of the ledger's index, half the TLB reach.
    this.legs = new RowIndex(capacity);
    this.reconfigure();
  }

  attachShadow(shadow: RuleInstance | null): void {
    this.shadow = shadow;
    this.reconfigure();
  }

  /** Legs are only kept while some scope can fire the rule (active or shadow). */
  reconfigure(): void {
    const cfg = this.core.config;
    const enabledSomewhere = (o: { duplicate_charge?: { enabled?: boolean } }): boolean => o.duplicate_charge?.enabled === true;
    this.on =
      cfg.rules.duplicate_charge.enabled ||
      (this.shadow !== null && cfg.shadow.duplicate_charge?.enabled !== false) ||
      Object.values(cfg.overrides.merchants).some(enabledSomewhere) ||
      Object.values(cfg.overrides.terminals).some(enabledSomewhere);
  }

  prefetchSale(t: Transaction, hint: number): number {
    const h = (this.dh = hint >= 0 ? this.hints[hint]! : legHash(t));
    return this.legs.probe(h);
  }

  hintSale(t: Transaction, hint: number): void {
    this.hints[hint] = legHash(t);
  }

  probeHint(hint: number): number {
    return this.legs.probe(this.hints[hint]!);
  }

  onSaleStored(term: TerminalState, t: Transaction, row: number, voided: boolean): void {
    const core = this.core;
    if (row < 0) {
      // Older than the refund lookback (so also beyond the allowed lateness): not kept.
      if (this.on) this.nLate++;
      return;
    }
    const m = term.merchant;
    const c = core.sales.rows;
    // Kept until event_time + lateness + window: a twin up to `window` later in event time may arrive
    // up to `lateness` after its own event time. Based on the event time even when the terminal's clock
    // runs ahead of the received time (validation caps that skew at engine.max_clock_skew, so such a
    // leg is held at most that much longer); a base of min(event, received) missed such pairs.
    c.setDupExpiry(row, t.event_time + core.lateness + m.rules[0]!.duplicate_charge.window);
    if (!this.on || voided) return;
    // Both legs must be within the allowed lateness when they arrive.
    if (core.clk - t.event_time > core.lateness) {
      this.nLate++;
      return;
    }
    const h = this.dh;
    const slot = this.findSlot(m.idx, t.card_token, t.amount_minor, h);
    const head = slot >= 0 ? this.legs.rowAt(slot) : -1;
    match(this, core, m, term, t, row, head);
    if (this.shadow !== null) match(this.shadow, core, m, term, t, row, head);
    // Push on the chain head (the ledger stored the sale's card in the row).
    if (slot >= 0) {
      c.setLegNext(row, head);
      this.legs.set(slot, row);
    } else {
      c.setLegNext(row, -1);
      this.legs.insert(h, row);
    }
    c.setDupHash(row, h);
    c.addFlags(row, LEG);
    this.wheel.add(this.wheel.bucketOf(c.dupExpiry(row)), row, c.gen(row));
    this.nLegs++;
  }

  /** Slot in the leg index of the chain for (merchant, card, amount), or -1. */
  private findSlot(mIdx: number, card: string, amount: number, h: number): number {
    const idx = this.legs;
    const c = this.core.sales.rows;
    for (let i = idx.first(h); ; i = idx.nextSlot(i)) {
      const r = idx.rowAt(i);
      if (r < 0) return -1;
      if (idx.hashAt(i) === h && c.merchant(r) === mIdx && c.amount(r) === amount && c.card[r] === card) return i;
    }
  }

  private dropLeg(row: number): void {
    const c = this.core.sales.rows;
    const slot = this.findSlot(c.merchant(row), c.card[row]!, c.amount(row), c.dupHash(row));
    if (slot >= 0) {
      const head = this.legs.rowAt(slot);
      if (head === row) {
        const next = c.legNext(row);
        if (next >= 0) this.legs.set(slot, next);
        else this.legs.removeAt(slot);
      } else {
        let p = head;
        while (p >= 0 && c.legNext(p) !== row) p = c.legNext(p);
        if (p >= 0) c.setLegNext(p, c.legNext(row));
      }
    }
    c.setLegNext(row, -1);
    c.clearFlags(row, LEG);
    this.nLegs--;
    // The row keeps its event id and card: the refund rules read them for the whole refund lookback.
  }

  onRowFreed(row: number): void {
    if (this.core.sales.rows.flags(row) & LEG) this.dropLeg(row);
    this.raisedOf.delete(row);
  }

  // ------------------------------------------------------------ resolution (alert updates)

  /** An alert was raised on rows a (earlier leg) and b: remember it on both; refunds already recorded may cover it at once. */
  raised(m: MerchantState, a: number, b: number, rec: RaisedDuplicate): void {
    for (const row of [a, b]) {
      let list = this.raisedOf.get(row);
      if (list === undefined) this.raisedOf.set(row, (list = []));
      list.push(rec);
      this.core.markRow(row);
    }
    this.checkRefunds(m, rec);
  }

  /** Raised duplicate alerts a sale row is a leg of (resolved ones included), oldest first. */
  alertsOfRow(row: number): readonly { id: string }[] {
    return this.raisedOf.get(row) ?? [];
  }

  /**
   * An approved void or reversal takes one charge back, so it resolves ONE alert of the leg: the open
   * one whose later leg (the retry) it is, else the earliest raised open one. With three charges A, B,
   * C and alerts (A,B) and (B,C), voiding B closes (A,B) and leaves (B,C) open: A and C are still a
   * duplicate, and (B,C)'s REVIEW_REFUND names C, the charge still to give back. A second void or
   * reversal of a leg whose void already resolved an alert (a redelivery, or both) resolves nothing.
   */
  onVoid(term: TerminalState, t: Transaction, row: number): void {
    if (row < 0) return;
    const list = this.raisedOf.get(row);
    if (list === undefined) return;
    const leg = t.original_txn_id!;
    let pick: RaisedDuplicate | null = null;
    for (const rec of list) {
      if (rec.voidedLeg === leg) return;
      if (!rec.resolved && (pick === null || (rec.legs[1] === leg && pick.legs[1] !== leg))) pick = rec;
    }
    if (pick === null) return;
    const resolution: AlertResolution = t.kind === 'REVERSAL' ? 'reversed' : 'voided';
    const which = pick.legs[0] === leg ? 'first' : 'second';
    this.resolve(term.merchant, pick, resolution, [t.event_id], `${t.kind === 'REVERSAL' ? 'reversal' : 'void'} ${t.txn_id} of its ${which} leg ${leg}`, { amount_minor: pick.amount }, [], leg);
  }

  /** As for a void, the alerts whose later leg (the retry) the refunded sale is are looked at first. */
  onRefund(term: TerminalState, _t: Transaction, row: number): void {
    if (row < 0) return;
    const list = this.raisedOf.get(row);
    if (list === undefined) return;
    const txn = this.core.sales.rows.txn[row]!;
    for (const rec of [...list]) if (!rec.resolved && rec.legs[1] === txn) this.checkRefunds(term.merchant, rec);
    for (const rec of [...list]) if (!rec.resolved && rec.legs[1] !== txn) this.checkRefunds(term.merchant, rec);
  }

  /**
   * Approved refunds of the two legs, to the duplicated card and in its currency, cover the duplicated
   * amount with money not yet credited to another alert: resolved `refunded`. Refunds are taken in
   * order (earlier leg first, each leg's refunds in the order recorded) until the amount is covered;
   * exactly the amount is credited to this alert (the rest of the last refund stays for another alert).
   */
  private checkRefunds(m: MerchantState, rec: RaisedDuplicate): void {
    const ledger = this.core.sales;
    let total = 0;
    let left = rec.amount;
    const credits: Credit[] = [];
    for (const txn of rec.legs) {
      const row = ledger.find(m, txn, hashString(txn, TXN_SEED));
      if (row < 0) continue;
      const refunds = ledger.refundsOf(row);
      if (refunds.length === 0) continue;
      const others = this.raisedOf.get(row);
      for (const r of refunds) {
        if (left <= 0) break;
        // Money back to another card, or in another currency, does not pay back this card's charge.
        if (r.card !== rec.card || r.currency !== rec.currency) continue;
        const avail = r.amount - creditedElsewhere(others, rec.id, r.eventId);
        if (avail <= 0) continue;
        const take = avail < left ? avail : left;
        credits.push({ eventId: r.eventId, amount: take });
        total += avail;
        left -= take;
      }
    }
    if (left > 0 || credits.length === 0) return;
    const n = credits.length === 1 ? '1 approved refund' : `${credits.length} approved refunds`;
    this.resolve(
      m,
      rec,
      'refunded',
      credits.map((x) => x.eventId),
      `${n} of its legs adding up to ${formatMoney(total, rec.currency)}`,
      { amount_minor: rec.amount, refunded_minor: total, refunds: credits.length },
      credits,
      null,
    );
  }

  private resolve(m: MerchantState, rec: RaisedDuplicate, resolution: AlertResolution, by: string[], how: string, details: Record<string, number>, credits: Credit[], voidedLeg: string | null): void {
    const core = this.core;
    const ledger = core.sales;
    // Both legs hold the record (separate objects after a restore): mark it resolved on each.
    for (const txn of rec.legs) {
      const row = ledger.find(m, txn, hashString(txn, TXN_SEED));
      if (row < 0) continue;
      for (const r of this.raisedOf.get(row) ?? []) {
        if (r.id !== rec.id) continue;
        r.resolved = true;
        r.credits = credits;
        r.voidedLeg = voidedLeg;
      }
      core.markRow(row);
    }
    rec.resolved = true;
    rec.credits = credits;
    rec.voidedLeg = voidedLeg;
    const ids = [...by].sort();
    core.emitUpdate({
      update_id: alertUpdateId(rec.id, 'auto_resolved', resolution, ids),
      alert_id: rec.id,
      rule: duplicateCharge.id,
      rule_version: duplicateCharge.version,
      terminal_id: rec.terminal,
      merchant_id: m.id,
      status: 'auto_resolved',
      resolution,
      resolved_by_event_ids: ids,
      resolved_at: core.clk,
      summary: `The duplicate charge of ${formatMoney(rec.amount, rec.currency)} to card ${rec.card} at merchant ${m.id} (transactions ${rec.legs[0]} and ${rec.legs[1]}) was ${resolution}: ${how}.`,
      details,
    });
  }

  sweep(clk: number): void {
    this.wheel.sweep(clk, this.visit, this.touchRow);
  }

  private expire(row: number, gen: number): void {
    const core = this.core;
    const c = core.sales.rows;
    if (c.gen(row) !== gen || !(c.flags(row) & LEG)) return;
    if (c.dupExpiry(row) > core.clk) {
      this.wheel.add(this.wheel.bucketOf(c.dupExpiry(row)), row, gen);
      return;
    }
    const m = core.merchantOfRow(row);
    this.dropLeg(row);
    core.touch(m);
  }

  writeSale(row: number, w: StateWriter): void {
    const c = this.core.sales.rows;
    const dup = (c.flags(row) & LEG) !== 0 && this.core.clk <= c.dupExpiry(row);
    w.str(K.event_id, dup ? c.eventId[row]! : null);
    w.str(K.card_token, dup ? c.card[row]! : null);
    w.bool(K.dup, dup);
    w.num(K.dup_expiry, c.dupExpiry(row));
    const raised = this.raisedOf.get(row);
    if (raised !== undefined) {
      // RaisedDuplicateSnapshot, in this order.
      w.list(K.dup_alerts, raised.length);
      for (const r of raised) {
        w.addMap();
        w.str(K.alert_id, r.id);
        w.list(K.legs, 2);
        w.addStr(r.legs[0]);
        w.addStr(r.legs[1]);
        w.end();
        w.str(K.terminal_id, r.terminal);
        w.str(K.card_token, r.card);
        w.num(K.amount, r.amount);
        w.str(K.currency, r.currency);
        w.bool(K.resolved, r.resolved);
        if (r.credits.length > 0) {
          w.list(K.credits, r.credits.length);
          for (const x of r.credits) {
            w.addMap();
            w.str(K.event_id, x.eventId);
            w.num(K.amount, x.amount);
            w.end();
          }
          w.end();
        }
        if (r.voidedLeg !== null) w.str(K.voided_leg, r.voidedLeg);
        w.end();
      }
      w.end();
    }
  }

  readSale(m: MerchantState, row: number, s: Record<string, unknown>): void {
    const raised = s.dup_alerts as RaisedDuplicateSnapshot[] | undefined;
    if (Array.isArray(raised) && raised.length > 0) {
      this.raisedOf.set(
        row,
        raised.map((r) => ({
          id: r.alert_id,
          legs: [r.legs[0], r.legs[1]],
          terminal: r.terminal_id,
          card: r.card_token,
          amount: r.amount,
          currency: r.currency,
          resolved: r.resolved,
          credits: (r.credits ?? []).map((x) => ({ eventId: x.event_id, amount: x.amount })),
          voidedLeg: r.voided_leg ?? null,
        })),
      );
    }
    const card = s.card_token;
    if (s.dup !== true || typeof card !== 'string' || s.event_id === null) return;
    const c = this.core.sales.rows;
    const amount = c.amount(row);
    const h = mixInt(hashString(card, CARD_SEED), amount);
    const slot = this.findSlot(m.idx, card, amount, h);
    c.card[row] = card;
    if (slot >= 0) {
      c.setLegNext(row, this.legs.rowAt(slot));
      this.legs.set(slot, row);
    } else this.legs.insert(h, row);
    c.setDupHash(row, h);
    c.addFlags(row, LEG);
    this.wheel.add(this.wheel.bucketOf(c.dupExpiry(row)), row, c.gen(row));
    this.nLegs++;
  }

  stats(into: RuleStats): void {
    into.cards += this.legs.count;
    into.duplicateLegs += this.nLegs;
    into.lateSales += this.nLate;
  }
}

/** The shadow instance: matches with its own parameters over the active instance's legs (see README). */
class DuplicateChargeShadow implements RuleInstance {
  readonly def = duplicateCharge;
  constructor(
    readonly slot: number,
    readonly variant: Variant,
  ) {}
}

export const duplicateCharge: RuleDefinition<'duplicate_charge', DuplicateChargeConfig> = {
  id: 'duplicate_charge',
  version: 1,
  defaults: { enabled: true, severity: 'high', mode: 'active', window: 10 * MIN },
  fields: { window: duration(1) },
  merchantOnly: { window: 'it pairs sales across the terminals of a merchant' },
  policy: [
    { kind: 'REVIEW_REFUND', expires_after: null },
    { kind: 'NOTIFY_MERCHANT', expires_after: null },
  ],
  alertHas: { card: true, transaction: true },
  create: (core, slot, variant) => (variant === 0 ? new DuplicateCharge(core, slot, variant, core.expectedSales) : new DuplicateChargeShadow(slot, variant)),
};
