// abnormal_amount: an APPROVED SALE >= ratio x the median of the terminal's last sample_size approved
// sales, once it has made min_sales. State per terminal: the sample (see median.ts) and the count of
// approved sales seen. See README.md.
import { formatMoney, type Transaction } from '@tillwatch/schemas';
import { num } from '../../fields.js';
import { newSample, releaseSample, sampleAdd, sampleLowerBound, sampleMedian, sampleValues, type SampleSlab, type SampleState } from '../../median.js';
import type { EngineCore, RuleCommon, RuleDefinition, RuleInstance, RuleStats, TerminalState, Variant } from '../types.js';

export interface AbnormalAmountConfig extends RuleCommon {
  /** Fires at amount >= ratio x median; at least 3 so ordinary variation (up to 3x) never fires. */
  ratio: number;
  /** Approved sales the terminal must have made before one is judged (warm-up). */
  min_sales: number;
  /** The median is taken over the terminal's last `sample_size` approved sales (by arrival). */
  sample_size: number;
}

/** The sample's fields live on this object itself (no extra object to chase; see median.ts). */
class AmountState implements SampleState {
  sSlab: SampleSlab | null = null;
  sOff = 0;
  sHead = 0;
  sN = 0;
  sAdded = 0;
  sN0 = 0;
  sLB = 0;
  salesSeen = 0;
}

const round4 = (x: number): number => Math.round(x * 10_000) / 10_000;

/** The median of an even sample can fall between two minor units (x.5): shown rounded, marked "about". */
const fmtMedian = (median: number, currency: string): string => (Number.isInteger(median) ? formatMoney(median, currency) : `about ${formatMoney(Math.round(median), currency)}`);

class AbnormalAmount implements RuleInstance {
  readonly def = abnormalAmount;
  private nSamples = 0;
  constructor(
    private readonly core: EngineCore,
    readonly slot: number,
    readonly variant: Variant,
  ) {}

  private state(term: TerminalState): AmountState {
    let s = term.st[this.slot] as AmountState | undefined;
    if (s === undefined) term.st[this.slot] = s = new AmountState();
    return s;
  }

  onSaleJudge(term: TerminalState, t: Transaction, voided: boolean): void {
    const s = this.state(term);
    const pa = term.rules[this.variant]!.abnormal_amount;
    const amount = t.amount_minor;
    if (pa.enabled || s.sSlab !== null) {
      if (s.sSlab === null) {
        newSample(s, this.core.slab(pa.sample_size));
        this.nSamples++;
      } else if (s.sSlab.capacity !== pa.sample_size) this.resize(s, pa.sample_size); // the rule set changed
      // The cheap lower bound settles almost every sale; the exact median is taken only near the threshold.
      if (pa.enabled && !voided && s.salesSeen >= pa.min_sales && amount >= pa.ratio * sampleLowerBound(s)) {
        const median = sampleMedian(s);
        if (median > 0 && amount >= pa.ratio * median) this.fire(term, s, t, median, pa);
      }
      sampleAdd(s, amount);
    }
    s.salesSeen++;
  }

  /** A new sample size keeps the most recent values. */
  private resize(s: AmountState, capacity: number): void {
    const values = sampleValues(s);
    releaseSample(s);
    newSample(s, this.core.slab(capacity));
    for (const v of values.slice(Math.max(0, values.length - capacity))) sampleAdd(s, v);
  }

  private fire(term: TerminalState, s: AmountState, t: Transaction, median: number, pa: AbnormalAmountConfig): void {
    const ratio = t.amount_minor / median;
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
      `Sale ${t.txn_id} of ${formatMoney(t.amount_minor, t.currency)} at terminal ${term.id} is ${ratio.toFixed(1)}x the terminal's median approved sale of ${fmtMedian(median, t.currency)} over its last ${s.sN} sales.`,
      { amount_minor: t.amount_minor, median_minor: median, ratio: round4(ratio), threshold_ratio: pa.ratio, sample_size: s.sN, sales_seen: s.salesSeen },
      t.txn_id,
      t.currency,
      t.amount_minor,
    );
  }

  dropTerminal(term: TerminalState): void {
    const s = term.st[this.slot] as AmountState | undefined;
    if (s === undefined) return;
    if (s.sSlab !== null) {
      releaseSample(s);
      this.nSamples--;
    }
    term.st[this.slot] = undefined;
  }

  dispose(terminals: Iterable<TerminalState>): void {
    for (const term of terminals) this.dropTerminal(term);
  }

  writeTerminal(term: TerminalState, out: Record<string, unknown>): void {
    const s = term.st[this.slot] as AmountState | undefined;
    out.sales_seen = s?.salesSeen ?? 0;
    out.sample = s === undefined ? [] : sampleValues(s);
  }

  readTerminal(term: TerminalState, snap: Record<string, unknown>): void {
    const s = new AmountState();
    s.salesSeen = typeof snap.sales_seen === 'number' ? snap.sales_seen : 0;
    const sample = Array.isArray(snap.sample) ? (snap.sample as number[]) : [];
    const pa = term.rules[this.variant]!.abnormal_amount;
    if (sample.length > 0 || pa.enabled) {
      const cap = pa.sample_size;
      newSample(s, this.core.slab(cap));
      // A smaller configured sample keeps the most recent values.
      for (const v of sample.slice(Math.max(0, sample.length - cap))) sampleAdd(s, v);
      this.nSamples++;
    }
    term.st[this.slot] = s;
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
