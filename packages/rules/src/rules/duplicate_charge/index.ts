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
const K = fieldKeys('event_id', 'card_token', 'dup', 'dup_expiry', 'dup_alerts', 'alert_id', 'legs', 'terminal_id', 'amount', 'currency', 'resolved', 'credits', 'voided_leg', 'dup_void', 'txn_id', 'reversal');
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
   * The money back held by this alert once resolved, by event id (refunds, and voids or reversals
   * worth the whole charge; minor units adding up to `amount`). Money goes to at most one alert; it may
   * move between resolved alerts of a group when that lets an open one be covered (see settle).
   */
  credits: Credit[];
  /** The leg (txn_id) whose approved void or reversal resolved it (as in its update), else null. */
  voidedLeg: string | null;
}

interface Credit {
  eventId: string;
  amount: number;
}

/** The first approved void or reversal of a leg of a raised alert (changelog: the sale's `dup_void`). */
interface VoidRec {
  eventId: string;
  txn: string;
  reversal: boolean;
}

/** Money back on a leg: a refund (its amount) or a void or reversal (the whole charge). */
interface Ret {
  eventId: string;
  /** txn_id of the leg. */
  leg: string;
  cap: number;
  void: VoidRec | null;
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
  /** Sale row -> the raised duplicate alerts it is a leg of (rare: only rows of fired pairs); one object per alert, on both legs. */
  private readonly raisedOf = new Map<number, RaisedDuplicate[]>();
  /** Sale row of a raised alert's leg -> its first approved void or reversal. */
  private readonly voidOf = new Map<number, VoidRec>();

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
    this.voidOf.delete(row);
  }

  // ------------------------------------------------------------ resolution (alert updates)

  /** An alert was raised on rows a (earlier leg) and b: remember it on both; money already back (refunds recorded before it) may cover it at once. */
  raised(m: MerchantState, a: number, b: number, rec: RaisedDuplicate): void {
    for (const row of [a, b]) {
      let list = this.raisedOf.get(row);
      if (list === undefined) this.raisedOf.set(row, (list = []));
      list.push(rec);
      this.core.markRow(row);
    }
    this.settle(m, b, false);
  }

  /** Raised duplicate alerts a sale row is a leg of (resolved ones included), oldest first. */
  alertsOfRow(row: number): readonly { id: string }[] {
    return this.raisedOf.get(row) ?? [];
  }

  /**
   * An approved void or reversal takes one charge back: it is recorded on the leg (the first one only:
   * the ledger drops a second void or reversal of a sale) and offered to the alerts (see settle).
   */
  onVoid(term: TerminalState, t: Transaction, row: number): void {
    if (row < 0 || this.voidOf.has(row)) return;
    // A leg without a raised alert needs no record: a voided sale is never paired afterwards.
    if (!this.raisedOf.has(row)) return;
    this.voidOf.set(row, { eventId: t.event_id, txn: t.txn_id, reversal: t.kind === 'REVERSAL' });
    this.core.markRow(row);
    this.settle(term.merchant, row, true);
  }

  onRefund(term: TerminalState, _t: Transaction, row: number): void {
    if (row < 0 || !this.raisedOf.has(row)) return;
    this.settle(term.merchant, row, false);
  }

  /**
   * Money back (approved refunds to the duplicated card in its currency, and voids or reversals, each
   * worth the whole charge) is assigned to the alerts of a group of charges (the alerts connected
   * through shared legs), each unit of money to at most one alert and only to an alert of the leg it
   * was given back on; an alert is resolved once it holds its amount. After every change (an alert
   * raised, a refund, a void) each open alert of the group is offered the money not assigned yet, and
   * money already assigned to a resolved alert may move to it when the resolved alert can take other
   * free money instead (an augmenting path: A's refund takes (A,B) over from B's refund, whose money
   * moves on to (B,C)). A resolved alert stays resolved (its update was emitted), so the set of
   * resolved alerts only grows and ends the same whatever order the money came back in (checked over
   * every order of whole charges back, test/duplicate_charge.test.ts). Open alerts are offered in a
   * fixed order (below).
   */
  private settle(m: MerchantState, start: number, byVoid: boolean): void {
    const ledger = this.core.sales;
    const c = ledger.rows;
    // The group: alerts reachable from `start` through shared legs.
    const alerts: RaisedDuplicate[] = [];
    const seen = new Set<string>();
    const rowOf = new Map<string, number>([[c.txn[start]!, start]]);
    const queue = [start];
    while (queue.length > 0) {
      const row = queue.pop()!;
      for (const rec of this.raisedOf.get(row) ?? []) {
        if (seen.has(rec.id)) continue;
        seen.add(rec.id);
        alerts.push(rec);
        for (const txn of rec.legs) {
          if (rowOf.has(txn)) continue;
          const r = ledger.find(m, txn, hashString(txn, TXN_SEED));
          rowOf.set(txn, r);
          if (r >= 0) queue.push(r);
        }
      }
    }
    const first = alerts[0];
    if (first === undefined || !alerts.some((a) => !a.resolved)) return;
    // The money back on each leg (all alerts of a group share card, amount and currency).
    const rets = new Map<string, Ret>();
    const retsOfLeg = new Map<string, { voids: Ret[]; refunds: Ret[] }>();
    for (const [txn, row] of rowOf) {
      const voids: Ret[] = [];
      const refunds: Ret[] = [];
      if (row >= 0) {
        const v = this.voidOf.get(row);
        if (v !== undefined) voids.push({ eventId: v.eventId, leg: txn, cap: first.amount, void: v });
        for (const r of ledger.refundsOf(row)) {
          // Money back to another card, or in another currency, does not pay back this card's charge.
          if (r.card === first.card && r.currency === first.currency && r.amount > 0) refunds.push({ eventId: r.eventId, leg: txn, cap: r.amount, void: null });
        }
      }
      for (const x of voids) rets.set(x.eventId, x);
      for (const x of refunds) rets.set(x.eventId, x);
      retsOfLeg.set(txn, { voids, refunds });
    }
    // The current assignment: credits of resolved alerts (credits of money no longer known stay as they are).
    const flow = new Map<RaisedDuplicate, Map<string, number>>();
    const used = new Map<string, number>();
    for (const a of alerts) {
      const f = new Map<string, number>();
      for (const x of a.credits) {
        if (!rets.has(x.eventId)) continue;
        f.set(x.eventId, (f.get(x.eventId) ?? 0) + x.amount);
        used.set(x.eventId, (used.get(x.eventId) ?? 0) + x.amount);
      }
      flow.set(a, f);
    }
    const free = (r: Ret): number => r.cap - (used.get(r.eventId) ?? 0);
    const anyFree = (): boolean => {
      for (const r of rets.values()) if (free(r) > 0) return true;
      return false;
    };
    if (!anyFree()) return;
    // Money back on an alert's legs, in the order it is taken: earlier leg first; voids first when a void arrived, else refunds (in the order recorded).
    const adj = (a: RaisedDuplicate): Ret[] => {
      const out: Ret[] = [];
      for (const txn of a.legs) {
        const x = retsOfLeg.get(txn);
        if (x !== undefined) out.push(...(byVoid ? x.voids : x.refunds));
      }
      for (const txn of a.legs) {
        const x = retsOfLeg.get(txn);
        if (x !== undefined) out.push(...(byVoid ? x.refunds : x.voids));
      }
      return out;
    };
    // Open alerts are offered the money in one fixed order, whatever event triggered it: by the event
    // time of their later leg (the retry), then of their earlier leg, then by alert id. Money back on a
    // leg so goes first to the alert whose later leg it is (the retry), as a single refund or void would.
    const et = (txn: string): number => {
      const r = rowOf.get(txn) ?? -1;
      return r >= 0 ? c.eventTime(r) : Infinity;
    };
    const candidates = alerts
      .filter((a) => !a.resolved)
      .map((a) => ({ a, k1: et(a.legs[1]), k0: et(a.legs[0]) }))
      .sort((x, y) => x.k1 - y.k1 || x.k0 - y.k0 || (x.a.id < y.a.id ? -1 : x.a.id > y.a.id ? 1 : 0))
      .map((x) => x.a);
    const changed = new Set<RaisedDuplicate>();
    for (const e of candidates) {
      if (e.resolved) continue;
      if (!anyFree()) break;
      const saved = new Map([...flow].map(([a, f]) => [a, new Map(f)]));
      const savedUsed = new Map(used);
      const touched = new Set<RaisedDuplicate>();
      let deficit = e.amount;
      while (deficit > 0) {
        // Breadth first from e: an alert needing money takes free money on its legs, or money held by another alert, which then needs it in turn.
        const parent = new Map<RaisedDuplicate, { via: Ret; from: RaisedDuplicate }>();
        const visited = new Set<RaisedDuplicate>([e]);
        const q = [e];
        let end: { a: RaisedDuplicate; r: Ret } | null = null;
        for (let i = 0; i < q.length && end === null; i++) {
          const f = q[i]!;
          for (const r of adj(f)) {
            if (free(r) > 0) {
              end = { a: f, r };
              break;
            }
            for (const g of alerts) {
              if (visited.has(g) || (flow.get(g)!.get(r.eventId) ?? 0) <= 0) continue;
              visited.add(g);
              parent.set(g, { via: r, from: f });
              q.push(g);
            }
          }
        }
        if (end === null) break;
        let b = Math.min(deficit, free(end.r));
        for (let g = end.a; g !== e; ) {
          const p = parent.get(g)!;
          b = Math.min(b, flow.get(g)!.get(p.via.eventId)!);
          g = p.from;
        }
        const add = (a: RaisedDuplicate, r: Ret, x: number): void => {
          const f = flow.get(a)!;
          const v = (f.get(r.eventId) ?? 0) + x;
          if (v === 0) f.delete(r.eventId);
          else f.set(r.eventId, v);
          touched.add(a);
        };
        add(end.a, end.r, b);
        used.set(end.r.eventId, (used.get(end.r.eventId) ?? 0) + b);
        for (let g = end.a; g !== e; ) {
          const p = parent.get(g)!;
          add(g, p.via, -b);
          add(p.from, p.via, b);
          g = p.from;
        }
        deficit -= b;
      }
      if (deficit > 0) {
        // Not covered: nothing moves.
        for (const [a, f] of saved) flow.set(a, f);
        used.clear();
        for (const [k, v] of savedUsed) used.set(k, v);
        continue;
      }
      for (const a of touched) if (a !== e) changed.add(a);
      changed.delete(e);
      this.resolveCovered(m, e, flow.get(e)!, rets, used);
    }
    // Resolved alerts whose money moved: their credits now name the money they hold (their update was emitted before and stays).
    for (const a of changed) {
      const keep = a.credits.filter((x) => !rets.has(x.eventId));
      a.credits = [...keep, ...[...flow.get(a)!].map(([eventId, amount]) => ({ eventId, amount }))];
      this.markLegs(m, a);
    }
  }

  private markLegs(m: MerchantState, rec: RaisedDuplicate): void {
    const ledger = this.core.sales;
    for (const txn of rec.legs) {
      const row = ledger.find(m, txn, hashString(txn, TXN_SEED));
      if (row >= 0) this.core.markRow(row);
    }
  }

  /** Alert `rec` holds its amount (`f`: money back by event id): resolved `voided`/`reversed` if a void or reversal is part of it, else `refunded`. */
  private resolveCovered(m: MerchantState, rec: RaisedDuplicate, f: Map<string, number>, rets: Map<string, Ret>, used: Map<string, number>): void {
    const credits: Credit[] = [...f].map(([eventId, amount]) => ({ eventId, amount }));
    let v: Ret | null = null;
    let vAmount = 0;
    let total = 0;
    let nRefunds = 0;
    for (const x of credits) {
      const r = rets.get(x.eventId)!;
      if (r.void !== null) {
        if (x.amount > vAmount) {
          v = r;
          vAmount = x.amount;
        }
      } else {
        nRefunds++;
        // The refund's money not held by another alert (can exceed the amount when the last refund is larger).
        total += r.cap - (used.get(r.eventId) ?? 0) + x.amount;
      }
    }
    const ids = credits.map((x) => x.eventId);
    const n = nRefunds === 1 ? '1 approved refund' : `${nRefunds} approved refunds`;
    if (v !== null && v.void !== null) {
      const which = rec.legs[0] === v.leg ? 'first' : 'second';
      const how = `${v.void.reversal ? 'reversal' : 'void'} ${v.void.txn} of its ${which} leg ${v.leg}${nRefunds > 0 ? ` and ${n} of its legs` : ''}`;
      this.resolve(m, rec, v.void.reversal ? 'reversed' : 'voided', ids, how, nRefunds > 0 ? { amount_minor: rec.amount, refunded_minor: total, refunds: nRefunds } : { amount_minor: rec.amount }, credits, v.leg);
    } else {
      this.resolve(m, rec, 'refunded', ids, `${n} of its legs adding up to ${formatMoney(total, rec.currency)}`, { amount_minor: rec.amount, refunded_minor: total, refunds: nRefunds }, credits, null);
    }
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
    const v = this.voidOf.get(row);
    if (v !== undefined) {
      w.map(K.dup_void);
      w.str(K.event_id, v.eventId);
      w.str(K.txn_id, v.txn);
      w.bool(K.reversal, v.reversal);
      w.end();
    }
  }

  readSale(m: MerchantState, row: number, s: Record<string, unknown>): void {
    const raised = s.dup_alerts as RaisedDuplicateSnapshot[] | undefined;
    if (Array.isArray(raised) && raised.length > 0) {
      const ledger = this.core.sales;
      const txn = ledger.rows.txn[row]!;
      this.raisedOf.set(
        row,
        raised.map((r) => {
          // One object per alert on both legs: reuse the other leg's if it was restored first.
          const other = r.legs[0] === txn ? r.legs[1] : r.legs[0];
          const orow = ledger.find(m, other, hashString(other, TXN_SEED));
          const same = orow >= 0 && orow !== row ? this.raisedOf.get(orow)?.find((x) => x.id === r.alert_id) : undefined;
          return (
            same ?? {
              id: r.alert_id,
              legs: [r.legs[0], r.legs[1]],
              terminal: r.terminal_id,
              card: r.card_token,
              amount: r.amount,
              currency: r.currency,
              resolved: r.resolved,
              credits: (r.credits ?? []).map((x) => ({ eventId: x.event_id, amount: x.amount })),
              voidedLeg: r.voided_leg ?? null,
            }
          );
        }),
      );
    }
    const v = s.dup_void as { event_id: string; txn_id: string; reversal: boolean } | undefined;
    if (v !== undefined && v !== null && typeof v.event_id === 'string') this.voidOf.set(row, { eventId: v.event_id, txn: v.txn_id, reversal: v.reversal === true });
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
