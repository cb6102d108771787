// abnormal_amount: an APPROVED SALE >= ratio x the median of the terminal's last sample_size approved
// sales, once it has made min_sales. State per terminal (in the instance, by terminal slot): the sample
// (see median.ts) and the count of approved sales seen. See README.md.
import { formatMoney, type Transaction } from '@tillwatch/schemas';
import { num } from '../../fields.js';
import { SAMPLE_HEADER, sampleAdd, sampleInit, sampleLowerBound, sampleMedian, sampleRelease, sampleSize, sampleValues, sampleWrite, type SampleSlab } from '../../median.js';
import type { TerminalFields, TerminalRow } from '../../storage/terminal-rows.js';
import { fieldKeys, type StateWriter } from '../../state-writer.js';

/** Changelog fields (TerminalSnapshot). */
const K = fieldKeys('sales_seen', 'sample');
import type { EngineCore, RuleCommon, RuleDefinition, RuleInstance, RuleStats, TerminalState, Variant } from '../types.js';

/** Up to this many times the median is ordinary variation: never an alert, whatever the ratio (at least 3). */
const ORDINARY_RATIO = 3;

export interface AbnormalAmountConfig extends RuleCommon {
  /** Fires at amount >= ratio x median; at least 3 so ordinary variation (up to 3x) never fires. */
  ratio: number;
  /** Approved sales the terminal must have made before one is judged (warm-up). */
  min_sales: number;
  /** The median is taken over the terminal's last `sample_size` approved sales (by arrival). */
  sample_size: number;
}

// Fields of the rule's range in the engine's terminal row (storage/terminal-rows.ts; read and written
// with this.fields.get/set on the terminal's row, this.fields.row(term.slot)): the sample header
// (median.ts: the first SAMPLE_HEADER fields), then the rule's own.
/** Approved sales the terminal has made (judged or not). */
const F_SEEN = SAMPLE_HEADER;
/** Capacity of the terminal's sample (its slab), 0 = no sample. */
const F_CAP = SAMPLE_HEADER + 1;
const FIELDS = SAMPLE_HEADER + 2;

const round4 = (x: number): number => Math.round(x * 10_000) / 10_000;

/** The median of an even sample can fall between two minor units (x.5): shown rounded, marked "about". */
const fmtMedian = (median: number, currency: string): string => (Number.isInteger(median) ? formatMoney(median, currency) : `about ${formatMoney(Math.round(median), currency)}`);

/**
 * Per-terminal state lives in the rule's range of the engine's terminal row (the sample header, the
 * sales count and the sample's capacity): the row the other rules read for the same sale, so no cache
 * line of the rule's own per sale. The values are in the slab of that capacity (median.ts).
 */
class AbnormalAmount implements RuleInstance {
  readonly def = abnormalAmount;
  private nSamples = 0;
  private readonly fields: TerminalFields;
  /** The last slab looked up (one sample size in force almost always). */
  private lastSlab: SampleSlab | null = null;
  constructor(
    private readonly core: EngineCore,
    readonly slot: number,
    readonly variant: Variant,
  ) {
    this.fields = core.terminalFields(FIELDS, 0);
  }

  private slabOf(capacity: number): SampleSlab {
    const last = this.lastSlab;
    if (last !== null && last.capacity === capacity) return last;
    return (this.lastSlab = this.core.slab(capacity));
  }

  onSaleJudge(term: TerminalState, t: Transaction, voided: boolean): void {
    const fields = this.fields;
    const r = fields.row(term.slot);
    const pa = term.rules[this.variant]!.abnormal_amount;
    const amount = t.amount_minor;
    const cap = fields.get(r, F_CAP);
    if (pa.enabled || cap !== 0) {
      let slab: SampleSlab;
      if (cap === 0) {
        slab = this.slabOf(pa.sample_size);
        sampleInit(fields, r, slab);
        fields.set(r, F_CAP, pa.sample_size);
        this.nSamples++;
      } else if (cap !== pa.sample_size) slab = this.resize(r, cap, pa.sample_size); // the rule set changed
      else slab = this.slabOf(cap);
      // The cheap lower bound settles almost every sale; the exact median is taken only near the threshold.
      if (pa.enabled && !voided && fields.get(r, F_SEEN) >= pa.min_sales && amount >= pa.ratio * sampleLowerBound(fields, r, slab)) {
        const median = sampleMedian(fields, r, slab);
        // Variation up to 3x the median is ordinary (issue 3): at ratio 3 a sale of exactly 3x does not fire.
        if (median > 0 && amount >= pa.ratio * median && amount > ORDINARY_RATIO * median) this.fire(term, t, median, pa);
      }
      sampleAdd(fields, r, slab, amount);
    }
    fields.set(r, F_SEEN, fields.get(r, F_SEEN) + 1);
  }

  /** A new sample size keeps the most recent values. */
  private resize(r: TerminalRow, from: number, capacity: number): SampleSlab {
    const fields = this.fields;
    const old = this.slabOf(from);
    const values = sampleValues(fields, r, old);
    sampleRelease(fields, r, old);
    const slab = this.slabOf(capacity);
    sampleInit(fields, r, slab);
    fields.set(r, F_CAP, capacity);
    for (const v of values.slice(Math.max(0, values.length - capacity))) sampleAdd(fields, r, slab, v);
    return slab;
  }

  private fire(term: TerminalState, t: Transaction, median: number, pa: AbnormalAmountConfig): void {
    const ratio = t.amount_minor / median;
    const r = this.fields.row(term.slot);
    const n = sampleSize(this.fields, r);
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
      { amount_minor: t.amount_minor, median_minor: median, ratio: round4(ratio), threshold_ratio: pa.ratio, sample_size: n, sales_seen: this.fields.get(r, F_SEEN) },
      t.txn_id,
      t.currency,
      t.amount_minor,
    );
  }

  dropTerminal(term: TerminalState): void {
    const k = term.slot;
    if (k < 0) return;
    const fields = this.fields;
    const r = fields.row(k);
    const cap = fields.get(r, F_CAP);
    if (cap !== 0) {
      sampleRelease(fields, r, this.slabOf(cap));
      fields.set(r, F_CAP, 0);
      this.nSamples--;
    }
    fields.set(r, F_SEEN, 0);
  }

  dispose(terminals: Iterable<TerminalState>): void {
    for (const term of terminals) this.dropTerminal(term);
    this.fields.release();
  }

  writeTerminal(term: TerminalState, w: StateWriter): void {
    const k = term.slot;
    const fields = this.fields;
    const r = fields.row(k);
    const cap = k >= 0 ? fields.get(r, F_CAP) : 0;
    w.num(K.sales_seen, k >= 0 ? fields.get(r, F_SEEN) : 0);
    if (cap === 0) {
      w.list(K.sample, 0);
      w.end();
    } else sampleWrite(fields, r, this.slabOf(cap), w, K.sample);
  }

  /** Called after the engine registered the terminal (its slot is set, its fields reset). */
  readTerminal(term: TerminalState, snap: Record<string, unknown>): void {
    const fields = this.fields;
    const r = fields.row(term.slot);
    fields.set(r, F_SEEN, typeof snap.sales_seen === 'number' ? snap.sales_seen : 0);
    const sample = Array.isArray(snap.sample) ? (snap.sample as number[]) : [];
    const pa = term.rules[this.variant]!.abnormal_amount;
    if (sample.length > 0 || pa.enabled) {
      const cap = pa.sample_size;
      const slab = this.slabOf(cap);
      sampleInit(fields, r, slab);
      fields.set(r, F_CAP, cap);
      // A smaller configured sample keeps the most recent values.
      for (const v of sample.slice(Math.max(0, sample.length - cap))) sampleAdd(fields, r, slab, v);
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
