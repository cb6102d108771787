// The sale ledger: shared storage of the sales, voids and refunds the rules match against. A sale is a
// row of SaleRows (one cache line; see store.ts for why), found by (merchant, txn_id) through an
// open-addressing index. Rows also serve placeholders: a refund or void naming a sale not seen yet.
// Matching is in event time: a refund, void or reversal matches a sale it names only if its event time
// is at most engine.refund_lookback after the sale's. A row is held (on the stream clock) until
// min(event_time, received_time) + refund_lookback + allowed_lateness, so such an event uploaded up to
// the allowed lateness late still finds its sale. Expiry is logical (every lookup checks the row's
// hold against the clock); the physical sweep runs through an expiry wheel.
import type { Transaction } from '@tillwatch/schemas';
import type { MerchantState } from '../rules/types.js';
import { ExpiryWheel, RowIndex, SaleRows, hashString } from '../store.js';
import { fieldKeys, type StateWriter } from '../state-writer.js';

/** The ledger's fields of a sale's changelog value (SaleSnapshot). */
const K = fieldKeys('txn_id', 'terminal_id', 'seen', 'voided', 'amount', 'currency', 'event_time', 'ref_expiry', 'refunded', 'refunds', 'event_id', 'card_token', 'refunds_outside');

// Row flags. Bits 1-8 belong to the ledger and the engine; rules get the rest (see LEG).
/** The APPROVED SALE itself has arrived (else: a placeholder made by a refund or void). */
export const SEEN = 1;
/** An APPROVED VOID/REVERSAL names it. */
export const VOIDED = 2;
/** Changed since the last takeChangedEntities (engine bookkeeping, not state). */
export const E_DIRTY = 8;
/** Reserved for duplicate_charge: the row is currently a duplicate leg. */
export const LEG = 4;

export const TXN_SEED = 0x1b873593;

export interface RefundRec {
  txn: string;
  eventId: string;
  terminalId: string;
  card: string;
  amount: number;
  /** The refund's own currency (duplicate_charge counts only refunds in the sale's currency). */
  currency: string;
  et: number;
}

/** Result of recording a refund: the sale row (-1: none kept) and the refunded total before it. */
export interface RefundResult {
  row: number;
  before: number;
}

/** The ledger's owner (the engine): the clock and the bookkeeping of rows it is told about. */
export interface LedgerOwner {
  /** The engine clock (a plain field: read on every lookup). */
  readonly clk: number;
  /** engine.allowed_lateness (ms): how long a row is held past its refund lookback on the clock. */
  readonly lateness: number;
  merchantOfIdx(idx: number): MerchantState;
  /** A row is freed: its owner is told (tombstone, rule references). */
  rowFreed(m: MerchantState, row: number): void;
  /** A row changed (changelog). */
  markRow(row: number): void;
  /** A merchant lost a row in a sweep (the engine removes merchants left empty). */
  touch(m: MerchantState): void;
}

export class SaleLedger {
  readonly rows: SaleRows;
  private readonly txnIdx: RowIndex;
  private readonly wheel: ExpiryWheel;
  /** Refunds per sale row (rare: kept out of the rows). */
  private readonly refunds = new Map<number, RefundRec[]>();
  /**
   * Per sale row, the txn_ids of refunds, voids and reversals that named it more than the refund
   * lookback after it (event time): not matched, kept only so a redelivery is recognised (rarer still).
   */
  private readonly outside = new Map<number, string[]>();
  private readonly visit = (row: number, gen: number): void => this.expire(row, gen);
  private readonly touchRow = (row: number): void => {
    this.prefetch ^= this.txnIdx.probe(this.rows.txnHash(row));
  };
  /** Sink for early probe loads (kept so the compiler cannot drop them). */
  prefetch = 0;

  constructor(
    capacity: number,
    sweepEveryMs: number,
    private readonly owner: LedgerOwner,
  ) {
    this.rows = new SaleRows(capacity);
    this.txnIdx = new RowIndex(capacity * 2);
    this.wheel = new ExpiryWheel(sweepEveryMs);
  }

  get size(): number {
    return this.rows.live;
  }

  /** Loads the first probe line of txn's index slot (an early cache miss); the value is only a sink. */
  probeTxn(h: number): number {
    return this.txnIdx.probe(h);
  }

  /**
   * The held row of (merchant, txn_id), or -1. A row past its hold (refExpiry + allowed_lateness of
   * clock) is freed and reported absent. Whether an event is within the refund lookback of the sale
   * is the caller's question (event time: see within()).
   */
  find(m: MerchantState, txn: string, h: number): number {
    const idx = this.txnIdx;
    const rows = this.rows;
    for (let i = idx.first(h); ; i = idx.nextSlot(i)) {
      const r = idx.rowAt(i);
      if (r < 0) return -1;
      if (idx.hashAt(i) === h && rows.merchant(r) === m.idx && rows.txn[r] === txn) {
        if (this.owner.clk > rows.refExpiry(r) + this.owner.lateness) {
          this.free(r);
          return -1;
        }
        return r;
      }
    }
  }

  /** True when row is held no longer at clock clk (refExpiry + allowed_lateness, logical expiry). */
  expired(row: number, clk: number): boolean {
    return clk > this.rows.refExpiry(row) + this.owner.lateness;
  }

  /**
   * Whether an event made at event time et is within the refund lookback of row's sale: always for a
   * placeholder (the sale not seen: nothing to compare), else et - the sale's event time <= lookback.
   */
  within(row: number, et: number, lookback: number): boolean {
    const c = this.rows;
    return (c.flags(row) & SEEN) === 0 || et - c.eventTime(row) <= lookback;
  }

  /**
   * A new row for (merchant, txn) with refund-lookback expiry refExpiry (clock), held until refExpiry +
   * allowed_lateness.
   */
  alloc(m: MerchantState, txn: string, h: number, flags: number, refExpiry: number): number {
    const c = this.rows;
    const row = c.alloc();
    c.txn[row] = txn;
    c.setTxnHash(row, h);
    c.setFlags(row, flags);
    c.setMerchant(row, m.idx);
    c.refunded[row] = 0;
    c.setAmount(row, 0);
    c.setEventTime(row, 0);
    c.setDupExpiry(row, 0);
    c.setLegNext(row, -1);
    c.setRefExpiry(row, refExpiry);
    // Append to the merchant's list.
    c.setPrev(row, m.tail);
    c.setNext(row, -1);
    if (m.tail >= 0) c.setNext(m.tail, row);
    else m.head = row;
    m.tail = row;
    m.rows++;
    this.txnIdx.insert(h, row);
    this.wheel.add(this.wheel.bucketOf(refExpiry + this.owner.lateness), row, c.gen(row));
    this.owner.markRow(row);
    return row;
  }

  free(row: number): void {
    const c = this.rows;
    const m = this.owner.merchantOfIdx(c.merchant(row));
    this.owner.rowFreed(m, row);
    this.txnIdx.remove(c.txnHash(row), row);
    const prev = c.prev(row);
    const next = c.next(row);
    if (prev >= 0) c.setNext(prev, next);
    else m.head = next;
    if (next >= 0) c.setPrev(next, prev);
    else m.tail = prev;
    m.rows--;
    this.refunds.delete(row);
    this.outside.delete(row);
    c.release(row);
  }

  /** Raises a row's refund-lookback expiry (a sale arriving after its placeholder); its wheel entry re-files itself when due. */
  extend(row: number, refExpiry: number): void {
    const c = this.rows;
    if (refExpiry > c.refExpiry(row)) c.setRefExpiry(row, refExpiry);
  }

  /**
   * Stores an APPROVED SALE made at terminalId (row: its placeholder, or -1). Returns its row, or -1 when it is older than
   * the refund lookback plus the allowed lateness (nothing to keep).
   */
  storeSale(m: MerchantState, terminalId: string, t: Transaction, h: number, row: number, lookback: number): number {
    const c = this.rows;
    let cur = t.currency;
    if (cur === m.currency) cur = m.currency;
    else m.currency = cur;
    const base = t.event_time < t.received_time ? t.event_time : t.received_time;
    const refExp = base + lookback;
    if (row < 0) {
      if (refExp + this.owner.lateness < this.owner.clk) return -1;
      row = this.alloc(m, t.txn_id, h, SEEN, refExp);
    } else {
      c.addFlags(row, SEEN);
      this.extend(row, refExp);
      // Refunds recorded before the sale: from now on the total counts only those in its currency.
      const list = this.refunds.get(row);
      if (list !== undefined) c.refunded[row] = sumIn(list, cur);
      this.owner.markRow(row);
    }
    // The sale's event id and card, kept for the refund lookback (duplicate_charge, refund_card_mismatch
    // and refund_after_deadline read them from these columns).
    c.eventId[row] = t.event_id;
    c.card[row] = t.card_token;
    c.terminalId[row] = terminalId; // the terminal's own string: rows do not keep event strings alive
    c.setAmount(row, t.amount_minor);
    c.currency[row] = cur;
    c.setEventTime(row, t.event_time);
    return row;
  }

  /** A placeholder for a sale named by a refund or void before it arrived; -1 when beyond the lookback plus the allowed lateness. */
  private placeholder(m: MerchantState, txn: string, h: number, t: Transaction, flags: number, lookback: number): number {
    const base = t.event_time < t.received_time ? t.event_time : t.received_time;
    const refExp = base + lookback;
    if (refExp + this.owner.lateness < this.owner.clk) return -1;
    return this.alloc(m, txn, h, flags, refExp);
  }

  hasRefunds(row: number): boolean {
    return this.refunds.has(row);
  }

  refundsOf(row: number): readonly RefundRec[] {
    return this.refunds.get(row) ?? [];
  }

  /**
   * Records an APPROVED REFUND of `orig` (non-null). Returns null when the same refund (txn_id) was
   * already recorded, else the sale row (-1: none held, or the sale is more than the lookback before
   * the refund in event time) and the refunded total before it: the sale's refunds in the sale's
   * currency (a refund in another currency is recorded but not added to the total).
   */
  recordRefund(m: MerchantState, terminalId: string, t: Transaction, orig: string, lookback: number, out: RefundResult): RefundResult | null {
    const c = this.rows;
    const h = hashString(orig, TXN_SEED);
    let row = this.find(m, orig, h);
    let list: RefundRec[] | undefined;
    if (row >= 0) {
      list = this.refunds.get(row);
      if (list !== undefined) for (const r of list) if (r.txn === t.txn_id) return null;
      if (this.isOutside(row, t.txn_id)) return null;
      if (!this.within(row, t.event_time, lookback)) {
        this.addOutside(row, t.txn_id);
        out.row = -1;
        out.before = 0;
        return out;
      }
    }
    if (row < 0) row = this.placeholder(m, orig, h, t, 0, lookback);
    const before = row >= 0 ? c.refunded[row]! : 0;
    if (row >= 0) {
      if (list === undefined) this.refunds.set(row, (list = []));
      list.push({ txn: t.txn_id, eventId: t.event_id, terminalId, card: t.card_token, amount: t.amount_minor, currency: t.currency, et: t.event_time });
      // A placeholder counts every refund (its currency is not known yet; storeSale recounts).
      if ((c.flags(row) & SEEN) === 0 || t.currency === c.currency[row]) c.refunded[row] = before + t.amount_minor;
      this.owner.markRow(row);
    }
    out.row = row;
    out.before = before;
    return out;
  }

  private isOutside(row: number, txn: string): boolean {
    const o = this.outside.get(row);
    return o !== undefined && o.includes(txn);
  }

  private addOutside(row: number, txn: string): void {
    const o = this.outside.get(row);
    if (o === undefined) this.outside.set(row, [txn]);
    else o.push(txn);
    this.owner.markRow(row);
  }

  /**
   * An APPROVED VOID/REVERSAL of `orig`: marks the sale voided (or leaves a voided placeholder). Returns
   * the row (-1: none held, or the sale is more than the lookback before it in event time, so not
   * voided; -2: voided already, or the same out-of-lookback void again).
   */
  recordVoid(m: MerchantState, t: Transaction, orig: string, lookback: number): number {
    const h = hashString(orig, TXN_SEED);
    const row = this.find(m, orig, h);
    if (row >= 0) {
      if (this.isOutside(row, t.txn_id)) return -2;
      if (!this.within(row, t.event_time, lookback)) {
        this.addOutside(row, t.txn_id);
        return -1;
      }
      // Voided already (this void delivered again, or a second void or reversal of the same sale):
      // the sale's money comes back once, so nothing changes and the caller gives no second reason.
      if ((this.rows.flags(row) & VOIDED) !== 0) return -2;
      this.rows.addFlags(row, VOIDED);
      this.owner.markRow(row);
      return row;
    }
    return this.placeholder(m, orig, h, t, VOIDED, lookback);
  }

  /** Physical expiry of rows past their hold (refund lookback + allowed lateness). */
  sweep(clk: number): void {
    this.wheel.sweep(clk, this.visit, this.touchRow);
  }

  private expire(row: number, gen: number): void {
    const c = this.rows;
    if (c.gen(row) !== gen) return;
    const until = c.refExpiry(row) + this.owner.lateness;
    if (until >= this.owner.clk) {
      // Raised meanwhile (a sale after its placeholder), or the lateness grew (setRules): filed again.
      this.wheel.add(this.wheel.bucketOf(until), row, gen);
      return;
    }
    const m = this.owner.merchantOfIdx(c.merchant(row));
    this.free(row);
    this.owner.touch(m);
  }

  /** Changelog fields of a row (the ledger's part of a SaleSnapshot). */
  write(r: number, w: StateWriter): void {
    const c = this.rows;
    const f = c.flags(r);
    w.str(K.txn_id, c.txn[r]!);
    w.str(K.terminal_id, c.terminalId[r]!);
    w.bool(K.seen, (f & SEEN) !== 0);
    w.bool(K.voided, (f & VOIDED) !== 0);
    w.num(K.amount, c.amount(r));
    w.str(K.currency, c.currency[r]!);
    w.num(K.event_time, c.eventTime(r));
    w.num(K.ref_expiry, c.refExpiry(r));
    w.num(K.refunded, c.refunded[r]!);
    const refunds = this.refunds.get(r);
    const n = refunds === undefined ? 0 : refunds.length;
    w.list(K.refunds, n);
    for (let i = 0; i < n; i++) {
      const x = refunds![i]!;
      w.addMap();
      w.str(K.txn_id, x.txn);
      w.str(K.event_id, x.eventId);
      w.str(K.terminal_id, x.terminalId);
      w.str(K.card_token, x.card);
      w.num(K.amount, x.amount);
      w.str(K.currency, x.currency);
      w.num(K.event_time, x.et);
      w.end();
    }
    w.end();
    const o = this.outside.get(r);
    if (o !== undefined) w.strings(K.refunds_outside, o);
  }

  /** Restores a row from what write() wrote. */
  read(m: MerchantState, s: SaleFields): number {
    const c = this.rows;
    const row = this.alloc(m, s.txn_id, hashString(s.txn_id, TXN_SEED), (s.seen ? SEEN : 0) | (s.voided ? VOIDED : 0), s.ref_expiry);
    c.eventId[row] = s.event_id;
    c.terminalId[row] = s.terminal_id;
    c.setAmount(row, s.amount);
    c.currency[row] = s.currency;
    c.setEventTime(row, s.event_time);
    c.setDupExpiry(row, s.dup_expiry);
    c.refunded[row] = s.refunded;
    if (s.refunds.length > 0) {
      // A changelog written before refunds carried their currency: taken as the sale's (as counted then).
      const list = s.refunds.map((x) => ({ txn: x.txn_id, eventId: x.event_id, terminalId: x.terminal_id, card: x.card_token, amount: x.amount, currency: x.currency ?? s.currency, et: x.event_time }));
      this.refunds.set(row, list);
      // The sale's total in its own currency (what recordRefund keeps; a value written before refunds
      // of other currencies were left out of it is recounted).
      if (s.seen) c.refunded[row] = sumIn(list, s.currency);
    }
    if (s.refunds_outside !== undefined && s.refunds_outside.length > 0) this.outside.set(row, [...s.refunds_outside]);
    return row;
  }

  /** Marks a row for the changelog if not already; returns false when it already was. */
  markDirty(row: number): boolean {
    const c = this.rows;
    const f = c.flags(row);
    if (f & E_DIRTY) return false;
    c.setFlags(row, f | E_DIRTY);
    return true;
  }
}

/** The sale fields the ledger reads back (see SaleSnapshot). */
export interface SaleFields {
  txn_id: string;
  event_id: string | null;
  terminal_id: string | null;
  seen: boolean;
  voided: boolean;
  amount: number;
  currency: string;
  event_time: number;
  dup_expiry: number;
  ref_expiry: number;
  refunded: number;
  refunds: { txn_id: string; event_id: string; terminal_id: string; card_token: string; amount: number; currency?: string; event_time: number }[];
  /** txn_ids of refunds/voids that named the sale more than the lookback after it (absent: none; written since 2026-12-07). */
  refunds_outside?: string[];
}

/** The total of the refunds in currency cur. */
function sumIn(list: readonly RefundRec[], cur: string): number {
  let total = 0;
  for (const r of list) if (r.currency === cur) total += r.amount;
  return total;
}
