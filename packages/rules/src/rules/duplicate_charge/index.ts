// duplicate_charge: two APPROVED SALEs, same merchant, card, amount and currency, different txn_id,
// event times <= window apart, at any terminals of the merchant, whichever arrives first.
// State (rule-wide, shared by the active and the shadow instance): the duplicate legs, sale rows of
// the ledger chained per (merchant, card, amount) through an open-addressing index, with an expiry
// wheel. See README.md.
import type { Transaction } from '@tillwatch/schemas';
import { duration, MIN } from '../../fields.js';
import { fmtDuration } from '../../format.js';
import { LEG, VOIDED } from '../../storage/ledger.js';
import { ExpiryWheel, RowIndex, hashString, mixInt } from '../../store.js';
import type { EngineCore, MerchantState, RuleCommon, RuleDefinition, RuleInstance, RuleStats, TerminalState, Variant } from '../types.js';

export interface DuplicateChargeConfig extends RuleCommon {
  /** Max event-time distance between the two legs, ms. */
  window: number;
}

const CARD_SEED = 0x5bd1e995;
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
  core.emit(
    inst,
    p,
    t2,
    m.id,
    t.card_token,
    [c.eventId[first]!, c.eventId[second]!],
    c.eventTime(first),
    c.eventTime(second),
    t.received_time,
    `Card ${t.card_token} was charged ${t.amount_minor} ${t.currency} (minor units) twice at merchant ${m.id} within ${fmtDuration(gap)}: transaction ${c.txn[first]} at terminal ${t1} and ${c.txn[second]} at terminal ${t2}.`,
    { amount_minor: t.amount_minor, gap_ms: gap, window_ms: window, same_terminal: t1 === t2 ? 1 : 0 },
    c.txn[second]!,
  );
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
  private on = true;
  private shadow: RuleInstance | null = null;
  private nLegs = 0;
  private nLate = 0;

  constructor(
    private readonly core: EngineCore,
    readonly slot: number,
    readonly variant: Variant,
    capacity: number,
  ) {
    this.legs = new RowIndex(capacity * 2);
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

  prefetchSale(t: Transaction): number {
    const h = (this.dh = mixInt(hashString(t.card_token, CARD_SEED), t.amount_minor));
    return this.legs.probe(h);
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
    const base = t.event_time < t.received_time ? t.event_time : t.received_time;
    c.setDupExpiry(row, base + core.lateness + m.rules[0]!.duplicate_charge.window);
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
    // Push on the chain head; share the card string already stored.
    if (slot >= 0) {
      c.card[row] = c.card[head]!;
      c.setLegNext(row, head);
      this.legs.set(slot, row);
    } else {
      c.card[row] = t.card_token;
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
    // Only refunds can still match the row, and they need neither its event id nor its card.
    c.eventId[row] = null;
    c.card[row] = null;
  }

  onRowFreed(row: number): void {
    if (this.core.sales.rows.flags(row) & LEG) this.dropLeg(row);
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

  writeSale(row: number, out: Record<string, unknown>): void {
    const c = this.core.sales.rows;
    const dup = (c.flags(row) & LEG) !== 0 && this.core.clk <= c.dupExpiry(row);
    out.event_id = dup ? c.eventId[row]! : null;
    out.card_token = dup ? c.card[row]! : null;
    out.dup = dup;
    out.dup_expiry = c.dupExpiry(row);
  }

  readSale(m: MerchantState, row: number, s: Record<string, unknown>): void {
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
