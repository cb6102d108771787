// abnormal_amount: an APPROVED SALE >= ratio x the median of the terminal's last sample_size approved
// sales, once it has made min_sales. State per terminal (in the instance, by terminal slot): the sample
// (see median.ts) and the count of approved sales seen. See README.md.
import { formatMoney, type Transaction } from '@tillwatch/schemas';
import { num } from '../../fields.js';
import { SAMPLE_HEADER, sampleAdd, sampleInit, sampleLowerBound, sampleMedian, sampleRelease, sampleSize, sampleValues, type SampleSlab } from '../../median.js';
import type { EngineCore, RuleCommon, RuleDefinition, RuleInstance, RuleStats, TerminalState, Variant } from '../types.js';

export interface AbnormalAmountConfig extends RuleCommon {
  /** Fires at amount >= ratio x median; at least 3 so ordinary variation (up to 3x) never fires. */
  ratio: number;
  /** Approved sales the terminal must have made before one is judged (warm-up). */
  min_sales: number;
  /** The median is taken over the terminal's last `sample_size` approved sales (by arrival). */
  sample_size: number;
}

/** Numbers per terminal slot in the instance's table: the sample header (median.ts), then the rule's own. */
const STRIDE = 8;
/** Approved sales the terminal has made (judged or not). */
const F_SEEN = SAMPLE_HEADER;

const round4 = (x: number): number => Math.round(x * 10_000) / 10_000;

/** The median of an even sample can fall between two minor units (x.5): shown rounded, marked "about". */
const fmtMedian = (median: number, currency: string): string => (Number.isInteger(median) ? formatMoney(median, currency) : `about ${formatMoney(Math.round(median), currency)}`);

/**
 * Per-terminal state lives in the instance, indexed by the terminal's slot (TerminalState.slot, stable
 * while the terminal is registered): the sample header and the sales count in one Float64Array row,
 * the sample's slab (null: no sample) in a dense array. An object per terminal cost one more cache
 * miss per sale.
 */
class AbnormalAmount implements RuleInstance {
  readonly def = abnormalAmount;
  private nSamples = 0;
  private hot = new Float64Array(STRIDE * 256);
  private slabOf: (SampleSlab | null)[] = new Array<SampleSlab | null>(256).fill(null);
  constructor(
    private readonly core: EngineCore,
    readonly slot: number,
    readonly variant: Variant,
  ) {}

  private grow(k: number): void {
    const n = Math.max(2 * this.slabOf.length, k + 1);
    const hot = new Float64Array(STRIDE * n);
    hot.set(this.hot);
    this.hot = hot;
    for (let i = this.slabOf.length; i < n; i++) this.slabOf.push(null);
  }

  onSaleJudge(term: TerminalState, t: Transaction, voided: boolean): void {
    const k = term.slot;
    if (k >= this.slabOf.length) this.grow(k);
    const h = this.hot;
    const o = k * STRIDE;
    const pa = term.rules[this.variant]!.abnormal_amount;
    const amount = t.amount_minor;
    let slab = this.slabOf[k]!;
    if (pa.enabled || slab !== null) {
      if (slab === null) {
        slab = this.slabOf[k] = this.core.slab(pa.sample_size);
        sampleInit(h, o, slab);
        this.nSamples++;
      } else if (slab.capacity !== pa.sample_size) slab = this.resize(k, pa.sample_size); // the rule set changed
      // The cheap lower bound settles almost every sale; the exact median is taken only near the threshold.
      if (pa.enabled && !voided && h[o + F_SEEN]! >= pa.min_sales && amount >= pa.ratio * sampleLowerBound(h, o, slab)) {
        const median = sampleMedian(h, o, slab);
        if (median > 0 && amount >= pa.ratio * median) this.fire(term, k, t, median, pa);
      }
      sampleAdd(h, o, slab, amount);
    }
    h[o + F_SEEN] = h[o + F_SEEN]! + 1;
  }

  /** A new sample size keeps the most recent values. */
  private resize(k: number, capacity: number): SampleSlab {
    const h = this.hot;
    const o = k * STRIDE;
    const old = this.slabOf[k]!;
    const values = sampleValues(h, o, old);
    sampleRelease(h, o, old);
    const slab = (this.slabOf[k] = this.core.slab(capacity));
    sampleInit(h, o, slab);
    for (const v of values.slice(Math.max(0, values.length - capacity))) sampleAdd(h, o, slab, v);
    return slab;
  }

  private fire(term: TerminalState, k: number, t: Transaction, median: number, pa: AbnormalAmountConfig): void {
    const ratio = t.amount_minor / median;
    const o = k * STRIDE;
    const n = sampleSize(this.hot, o);
    this.core.emit(
      this,
      pa,
      term.id,
      term.merchant.id,
      t.card_token,
      [t.event_id],
      t.event_time,
      t.event_time,
      t.received_time,
      `Sale ${t.txn_id} of ${formatMoney(t.amount_minor, t.currency)} at terminal ${term.id} is ${ratio.toFixed(1)}x the terminal's median approved sale of ${fmtMedian(median, t.currency)} over its last ${n} sales.`,
      { amount_minor: t.amount_minor, median_minor: median, ratio: round4(ratio), threshold_ratio: pa.ratio, sample_size: n, sales_seen: this.hot[o + F_SEEN]! },
      t.txn_id,
      t.currency,
      t.amount_minor,
    );
  }

  dropTerminal(term: TerminalState): void {
    const k = term.slot;
    if (k < 0 || k >= this.slabOf.length) return;
    const slab = this.slabOf[k]!;
    if (slab !== null) {
      sampleRelease(this.hot, k * STRIDE, slab);
      this.slabOf[k] = null;
      this.nSamples--;
    }
    this.hot[k * STRIDE + F_SEEN] = 0;
  }

  dispose(terminals: Iterable<TerminalState>): void {
    for (const term of terminals) this.dropTerminal(term);
  }

  writeTerminal(term: TerminalState, out: Record<string, unknown>): void {
    const k = term.slot;
    const known = k >= 0 && k < this.slabOf.length;
    const slab = known ? this.slabOf[k]! : null;
    out.sales_seen = known ? this.hot[k * STRIDE + F_SEEN]! : 0;
    out.sample = slab === null ? [] : sampleValues(this.hot, k * STRIDE, slab);
  }

  /** Called after the engine registered the terminal (its slot is set). */
  readTerminal(term: TerminalState, snap: Record<string, unknown>): void {
    const k = term.slot;
    if (k >= this.slabOf.length) this.grow(k);
    const h = this.hot;
    const o = k * STRIDE;
    h[o + F_SEEN] = typeof snap.sales_seen === 'number' ? snap.sales_seen : 0;
    const sample = Array.isArray(snap.sample) ? (snap.sample as number[]) : [];
    const pa = term.rules[this.variant]!.abnormal_amount;
    if (sample.length > 0 || pa.enabled) {
      const cap = pa.sample_size;
      const slab = (this.slabOf[k] = this.core.slab(cap));
      sampleInit(h, o, slab);
      // A smaller configured sample keeps the most recent values.
      for (const v of sample.slice(Math.max(0, sample.length - cap))) sampleAdd(h, o, slab, v);
      this.nSamples++;
    }
  }

  stats(into: RuleStats): void {
    into.samples += this.nSamples;
  }
}

export const abnormalAmount: RuleDefinition<'abnormal_amount', AbnormalAmountConfig> = {
  id: 'abnormal_amount',
  version: 1,
  defaults: { enabled: true, severity: 'medium', mode: 'active', ratio: 10, min_sales: 20, sample_size: 101 },
  fields: { ratio: num(3), min_sales: num(1, 1_000_000, true), sample_size: num(1, 10_001, true) },
  policy: [],
  alertHas: { card: true, transaction: true },
  create: (core, slot, variant) => new AbnormalAmount(core, slot, variant),
};
